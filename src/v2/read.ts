// Reading v2 state from the v3 keyspace: one read-only txn for a path and its ancestors, and
// directory listings one depth range at a time, all at the revision of that first read.
import type { V3Backend } from '../backend/index.js';
import { type RangeResponse, type RequestOp, type ResponseHeader, type ResponseOp } from '../gen/etcdserverpb/rpc.js';
import type { KeyValue } from '../gen/mvccpb/kv.js';
import { V2Error } from './errors.js';
import type { KeySchema } from './keys.js';
import { headerOf, nodeOf, type StoredNode, type V2Header, type V2Node } from './node.js';
import { ancestors, isHidden, isRoot } from './path.js';
import { getOp, rangeRequest } from './txn-ops.js';

export interface PathState {
  readonly header: V2Header;
  /** Proper ancestors below the root, outermost first. */
  readonly ancestors: readonly StoredNode[];
  readonly target: StoredNode;
  /** Number of keys one level below the target (0 unless it is a directory). */
  readonly childCount: number;
}

function rangeOf(r: ResponseOp | undefined): RangeResponse {
  if (r?.response?.$case !== 'responseRange') throw new Error('v2: expected a range response');
  return r.response.value;
}

export function first(r: ResponseOp | undefined): KeyValue | undefined {
  return rangeOf(r).kvs[0];
}

function stored(path: string, file: KeyValue | undefined, dir: KeyValue | undefined, birth?: KeyValue, ttl?: KeyValue): StoredNode {
  return { path, ...(file ? { file } : {}), ...(dir ? { dir } : {}), ...(birth ? { birth } : {}), ...(ttl ? { ttl } : {}) };
}

/** The path, its ancestors and its child count, in one read-only txn (one revision; 0 = current). */
export async function readPath(backend: V3Backend, keys: KeySchema, path: string, revision = 0, serializable = false): Promise<PathState> {
  const resp = await backend.txn({ compare: [], success: pathOps(keys, path, revision, serializable), failure: [] });
  return pathStateOf(path, resp.header, resp.responses);
}

/** The range ops readPath runs. */
function pathOps(keys: KeySchema, path: string, revision = 0, serializable = false): RequestOp[] {
  const at = { revision, serializable };
  const ops = ancestors(path).flatMap((a) => [getOp(keys.fileKey(a), undefined, at), getOp(keys.dirKey(a), undefined, at)]);
  if (!isRoot(path)) {
    ops.push(getOp(keys.fileKey(path), undefined, at), getOp(keys.dirKey(path), undefined, at), getOp(keys.birthKey(path), undefined, at), getOp(keys.ttlKey(path), undefined, at));
  }
  const level = keys.levelRange(path, 1);
  ops.push(getOp(level.key, level.rangeEnd, { countOnly: true, revision, serializable }));
  return ops;
}

/** The PathState in the answers to pathOps (r), read at the revision of `header`. */
function pathStateOf(path: string, header: ResponseHeader | undefined, r: readonly ResponseOp[]): PathState {
  const anc = ancestors(path);
  const ancestorsState = anc.map((a, i) => stored(a, first(r[2 * i]), first(r[2 * i + 1])));
  const base = 2 * anc.length;
  const target = isRoot(path) ? stored('/', undefined, undefined) : stored(path, first(r[base]), first(r[base + 1]), first(r[base + 2]), first(r[base + 3]));
  const childCount = Number(rangeOf(r[r.length - 1]).count);
  return { header: headerOf(header), ancestors: ancestorsState, target, childCount };
}

/**
 * etcd's walk to a node for reads and in-place writes: the first missing component is 100, a file on
 * the way is 104 (cause = that file).
 */
export function walkError(s: PathState): V2Error | undefined {
  for (const a of s.ancestors) {
    if (a.file && !a.dir) return new V2Error(104, a.path, s.header.index);
    if (!a.dir) return new V2Error(100, a.path, s.header.index);
  }
  if (isRoot(s.target.path)) return undefined;
  if (!s.target.dir && !s.target.file) return new V2Error(100, s.target.path, s.header.index);
  return undefined;
}

/** The first ancestor that is a file (writes that create parents fail there with 104). */
export function fileAncestor(s: PathState): StoredNode | undefined {
  return s.ancestors.find((a) => a.file !== undefined && a.dir === undefined);
}

interface Building {
  readonly path: string;
  file?: KeyValue;
  dir?: KeyValue;
  birth?: KeyValue;
  ttl?: KeyValue;
  readonly children: Building[];
}

function byteOrder(a: { path: string }, b: { path: string }): number {
  return Buffer.compare(Buffer.from(a.path), Buffer.from(b.path));
}

/** Groups one level's keys into nodes (files, directory markers, birth markers). */
function groupLevel(keys: KeySchema, kvs: readonly KeyValue[]): Building[] {
  const byPath = new Map<string, Building>();
  for (const kv of kvs) {
    const parsed = keys.parse(kv.key);
    if (!parsed) continue;
    let b = byPath.get(parsed.path);
    if (!b) {
      b = { path: parsed.path, children: [] };
      byPath.set(parsed.path, b);
    }
    b[parsed.kind] = kv;
  }
  return [...byPath.values()].filter((b) => (b.file || b.dir) && !isHidden(b.path)).sort(byteOrder);
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function toNode(b: Building): V2Node {
  const base = nodeOf(stored(b.path, b.file, b.dir, b.birth, b.ttl))!;
  if (!b.dir || b.children.length === 0) return base;
  return { ...base, nodes: b.children.map(toNode) };
}

/** Children of dir at revision rev: one level, or (recursive) the whole visible subtree, sorted. */
export async function listDir(backend: V3Backend, keys: KeySchema, dir: string, rev: number, recursive: boolean, serializable = false): Promise<V2Node[]> {
  const top: Building[] = [];
  let parents = new Map<string, Building>([[dir, { path: dir, children: top }]]);
  for (let level = 1; parents.size > 0; level++) {
    const r = keys.levelRange(dir, level);
    const resp = await backend.range(rangeRequest(r.key, r.rangeEnd, { revision: rev, serializable }));
    if (resp.kvs.length === 0) break;
    const next = new Map<string, Building>();
    for (const b of groupLevel(keys, resp.kvs)) {
      const parent = parents.get(parentOf(b.path));
      if (!parent) continue; // below a hidden directory or a file
      parent.children.push(b);
      if (b.dir) next.set(b.path, b);
    }
    if (!recursive) break;
    parents = next;
  }
  return top.map(toNode);
}

/** The deepest level below dir (relative) that has keys at revision rev; 0 if dir has no children. */
export async function subtreeDepth(backend: V3Backend, keys: KeySchema, dir: string, rev: number): Promise<number> {
  let level = 0;
  for (;;) {
    const r = keys.levelRange(dir, level + 1);
    const resp = await backend.range(rangeRequest(r.key, r.rangeEnd, { revision: rev, countOnly: true }));
    if (resp.count === 0n) return level;
    level++;
  }
}
