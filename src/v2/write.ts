// v2 writes as ONE v3 txn each. A write reads the path's state (read.ts), decides purely from it
// (planWrite: a typed V2Error, or compares + ops + the resulting event), and commits a txn guarded by
// mod_revision compares on every key it looked at, so a concurrent change makes the txn fail and
// the write is re-planned on the new state (optimistic concurrency, bounded retries).
import type { Compare, RequestOp, ResponseOp } from '../gen/etcdserverpb/rpc.js';
import { V2Error } from './errors.js';
import type { KeySchema } from './keys.js';
import { kindOf, nodeOf, ttlFields, type StoredNode, type V2Action, type V2Event, type V2Node } from './node.js';
import { fileAncestor, first, walkError, type PathState } from './read.js';
import { isRoot, joinPath, parentOf } from './path.js';
import { deleteOp, exists, getOp, modIs, nestedTxnOp, putOp, unchangedSince } from './txn-ops.js';

/**
 * ttl: seconds (absent = permanent: an existing TTL is removed). refresh: keep the value, reset the
 * TTL (set: the node must be an existing file); recorded but skipped by watchers.
 */
export interface TtlOptions {
  readonly ttl?: bigint;
  readonly refresh?: boolean;
}

export type WriteRequest =
  | ({ readonly kind: 'set'; readonly path: string; readonly value: string; readonly dir: boolean } & TtlOptions)
  | ({ readonly kind: 'create'; readonly path: string; readonly value: string; readonly dir: boolean } & TtlOptions)
  | ({ readonly kind: 'update'; readonly path: string; readonly value: string } & TtlOptions)
  | ({ readonly kind: 'compareAndSwap'; readonly path: string; readonly value: string; readonly prevValue?: string; readonly prevIndex: number } & TtlOptions)
  | { readonly kind: 'delete'; readonly path: string; readonly dir: boolean; readonly recursive: boolean }
  | { readonly kind: 'compareAndDelete'; readonly path: string; readonly prevValue?: string; readonly prevIndex: number }
  | ({ readonly kind: 'post'; readonly path: string; readonly value: string; readonly dir: boolean } & TtlOptions)
  /** Internal (the store's sweeper): expire the node if it still carries this lease. */
  | { readonly kind: 'expire'; readonly path: string; readonly lease: bigint };

/** The lease a TTL'd write attaches (granted before the txn) and the node's expiration. */
export interface NewTtl {
  readonly lease: bigint;
  readonly expiration: bigint;
}

/** A decided write: the txn to commit and how to describe it once its revision is known. */
export interface WritePlan {
  readonly compares: readonly Compare[];
  readonly ops: readonly RequestOp[];
  readonly status: 200 | 201;
  /** The node the write (re)created, for the sweeper: its path and whether it is a directory. */
  readonly written?: { readonly path: string; readonly dir: boolean };
  event(rev: number): V2Event;
}

/** Extra state a directory delete needs: the deepest non-empty level below the target. */
export interface SubtreeInfo {
  readonly depth: number;
}

function guardsOf(keys: KeySchema, s: PathState): Compare[] {
  const out: Compare[] = [];
  for (const a of s.ancestors) out.push(modIs(keys.fileKey(a.path), a.file?.modRevision ?? 0n), modIs(keys.dirKey(a.path), a.dir?.modRevision ?? 0n));
  const t = s.target;
  if (!isRoot(t.path)) {
    out.push(modIs(keys.fileKey(t.path), t.file?.modRevision ?? 0n), modIs(keys.dirKey(t.path), t.dir?.modRevision ?? 0n), modIs(keys.birthKey(t.path), t.birth?.modRevision ?? 0n));
    out.push(modIs(keys.ttlKey(t.path), t.ttl?.modRevision ?? 0n));
  }
  return out;
}

function eventPut(keys: KeySchema, action: V2Action, path: string, dir: boolean, refresh = false): RequestOp {
  return putOp(keys.eventKey(), JSON.stringify({ action, key: path, dir, ...(refresh ? { refresh: true } : {}) }));
}

/** The ttl marker's op: put it on the new lease, or delete an existing one (the TTL is removed). */
function ttlOps(keys: KeySchema, path: string, ttl: NewTtl | undefined, had: boolean): RequestOp[] {
  if (ttl) return [putOp(keys.ttlKey(path), String(ttl.expiration), ttl.lease)];
  return had ? [deleteOp(keys.ttlKey(path))] : [];
}

/** A file's value put, on the new lease (or detached: lease 0). */
function filePut(keys: KeySchema, path: string, value: string, ttl: NewTtl | undefined): RequestOp {
  return putOp(keys.fileKey(path), value, ttl?.lease ?? 0n);
}

function withTtl(n: V2Node, ttl: NewTtl | undefined): V2Node {
  const { expiration: _e, ttl: _t, ...rest } = n;
  return ttl ? { ...rest, ...ttlFields(ttl.expiration) } : rest;
}

/** Puts the markers of missing ancestors (writes that create their parents). */
function parentPuts(keys: KeySchema, s: PathState): RequestOp[] {
  return s.ancestors.filter((a) => !a.dir).map((a) => putOp(keys.dirKey(a.path), ''));
}

function compareCause(n: V2Node, prevValue: string | undefined, prevIndex: number): string | undefined {
  const parts: string[] = [];
  if (prevValue !== undefined && prevValue !== n.value) parts.push(`[${prevValue} != ${n.value ?? ''}]`);
  if (prevIndex !== 0 && prevIndex !== n.modifiedIndex) parts.push(`[${prevIndex} != ${n.modifiedIndex}]`);
  return parts.length === 0 ? undefined : parts.join(' ');
}

function fresh(path: string, value: string, dir: boolean, rev: number, ttl: NewTtl | undefined): V2Node {
  const t = ttl ? ttlFields(ttl.expiration) : {};
  return dir ? { key: path, dir: true, ...t, createdIndex: rev, modifiedIndex: rev } : { key: path, dir: false, value, ...t, createdIndex: rev, modifiedIndex: rev };
}

export function deleted(prev: V2Node, rev: number): V2Node {
  return { key: prev.key, dir: prev.dir, createdIndex: prev.createdIndex, modifiedIndex: rev };
}

/** The in-order child name: the new index, zero-padded to 20 digits. */
export function inOrderName(index: number): string {
  return String(index).padStart(20, '0');
}

/** Decides a write from the state it read: a plan, or the v2 error it fails with. */
export function planWrite(keys: KeySchema, req: WriteRequest, s: PathState, subtree: SubtreeInfo, ttl?: NewTtl): WritePlan | V2Error {
  const idx = s.header.index;
  const t = s.target;
  const prev = nodeOf(t);
  const guards = guardsOf(keys, s);
  const hadTtl = t.ttl !== undefined;
  const fileKeyOps = (p: string): RequestOp[] => [deleteOp(keys.fileKey(p)), deleteOp(keys.birthKey(p)), ...(hadTtl ? [deleteOp(keys.ttlKey(p))] : [])];
  const refresh = 'refresh' in req && req.refresh === true;
  switch (req.kind) {
    case 'set':
    case 'create': {
      if (isRoot(req.path)) return new V2Error(107, '/', idx);
      const fa = fileAncestor(s);
      if (fa) return new V2Error(104, fa.path, idx);
      const kind = kindOf(t);
      if (req.kind === 'create' && kind !== 'none') return new V2Error(105, req.path, idx);
      const setRefresh = req.kind === 'set' && refresh;
      if (setRefresh) {
        const we = walkError(s);
        if (we || kind === 'none') return we ?? new V2Error(100, req.path, idx);
      }
      if (kind === 'dir') return new V2Error(102, req.path, idx);
      const value = setRefresh ? prev?.value ?? '' : req.value;
      const dir = req.dir && !setRefresh;
      const ops = parentPuts(keys, s);
      if (dir) ops.push(...(kind === 'file' ? [deleteOp(keys.fileKey(req.path)), deleteOp(keys.birthKey(req.path))] : []), putOp(keys.dirKey(req.path), ''));
      else ops.push(filePut(keys, req.path, value, ttl), ...(kind === 'file' ? [putOp(keys.birthKey(req.path), '')] : []));
      ops.push(...ttlOps(keys, req.path, ttl, hadTtl), eventPut(keys, req.kind, req.path, dir, setRefresh));
      const action = req.kind;
      return {
        compares: guards, ops, status: prev && action === 'set' ? 200 : 201, written: { path: req.path, dir },
        event: (rev) => ({ action, node: fresh(req.path, value, dir, rev, ttl), ...(prev ? { prevNode: prev } : {}) }),
      };
    }
    case 'update': {
      if (isRoot(req.path)) return new V2Error(107, '/', idx);
      const we = walkError(s);
      if (we || !prev) return we ?? new V2Error(100, req.path, idx);
      if (prev.dir && req.value !== '') return new V2Error(102, req.path, idx);
      const value = refresh ? prev.value ?? '' : req.value;
      // A directory's marker is not rewritten: only its TTL changes (its stored modifiedIndex stays).
      const ops = prev.dir ? [] : [filePut(keys, req.path, value, ttl)];
      ops.push(...ttlOps(keys, req.path, ttl, hadTtl), eventPut(keys, 'update', req.path, prev.dir, refresh));
      return {
        compares: guards, ops, status: 200, written: { path: req.path, dir: prev.dir },
        event: (rev) => ({ action: 'update', node: withTtl(prev.dir ? { ...prev, modifiedIndex: rev } : { ...prev, value, modifiedIndex: rev }, ttl), prevNode: prev }),
      };
    }
    case 'compareAndSwap': {
      if (isRoot(req.path)) return new V2Error(107, '/', idx);
      const we = walkError(s);
      if (we || !prev) return we ?? new V2Error(100, req.path, idx);
      if (prev.dir) return new V2Error(102, req.path, idx);
      const cause = compareCause(prev, req.prevValue, req.prevIndex);
      if (cause !== undefined) return new V2Error(101, cause, idx);
      const value = refresh ? prev.value ?? '' : req.value;
      const ops = [filePut(keys, req.path, value, ttl), ...ttlOps(keys, req.path, ttl, hadTtl), eventPut(keys, 'compareAndSwap', req.path, false, refresh)];
      return {
        compares: guards, ops, status: 200, written: { path: req.path, dir: false },
        event: (rev) => ({ action: 'compareAndSwap', node: withTtl({ ...prev, value, modifiedIndex: rev }, ttl), prevNode: prev }),
      };
    }
    case 'expire':
    case 'delete': {
      if (isRoot(req.path)) return new V2Error(107, '/', idx);
      const we = walkError(s);
      if (we || !prev) return we ?? new V2Error(100, req.path, idx);
      const expire = req.kind === 'expire';
      // The sweeper only expires the node it scheduled: same lease, still carried by its ttl marker.
      if (expire && t.ttl?.lease !== req.lease) return new V2Error(101, req.path, idx);
      const dirOk = expire || req.dir || req.recursive;
      let ops: RequestOp[];
      const compares = [...guards];
      if (!prev.dir) ops = fileKeyOps(req.path);
      else {
        if (!dirOk) return new V2Error(102, req.path, idx);
        if (!expire && !req.recursive && s.childCount > 0) return new V2Error(108, req.path, idx);
        ops = [deleteOp(keys.dirKey(req.path)), ...(hadTtl ? [deleteOp(keys.ttlKey(req.path))] : [])];
        for (let level = 1; level <= subtree.depth + 1; level++) {
          const r = keys.levelRange(req.path, level);
          compares.push(unchangedSince(r.key, r.rangeEnd, idx));
          if (level <= subtree.depth) ops.push(deleteOp(r.key, r.rangeEnd));
        }
      }
      const action = expire ? 'expire' : 'delete';
      ops.push(eventPut(keys, action, req.path, prev.dir));
      const prevNode = expire ? withoutTtl(prev) : prev;
      return { compares, ops, status: 200, event: (rev) => ({ action, node: deleted(prev, rev), prevNode }) };
    }
    case 'compareAndDelete': {
      if (isRoot(req.path)) return new V2Error(102, '', idx);
      const we = walkError(s);
      if (we || !prev) return we ?? new V2Error(100, req.path, idx);
      if (prev.dir) return new V2Error(102, req.path, idx);
      const cause = compareCause(prev, req.prevValue, req.prevIndex);
      if (cause !== undefined) return new V2Error(101, cause, idx);
      return {
        compares: guards, ops: [...fileKeyOps(req.path), eventPut(keys, 'compareAndDelete', req.path, false)], status: 200,
        event: (rev) => ({ action: 'compareAndDelete', node: deleted(prev, rev), prevNode: prev }),
      };
    }
    case 'post': {
      const fa = fileAncestor(s);
      if (fa) return new V2Error(104, fa.path, idx);
      if (kindOf(t) === 'file') return new V2Error(104, req.path, idx);
      const child = joinPath(req.path, inOrderName(idx + 1));
      const ops = parentPuts(keys, s);
      if (!isRoot(req.path) && !t.dir) ops.push(putOp(keys.dirKey(req.path), ''));
      ops.push(req.dir ? putOp(keys.dirKey(child), '') : filePut(keys, child, req.value, ttl), ...ttlOps(keys, child, ttl, false));
      ops.push(eventPut(keys, 'create', child, req.dir));
      const compares = [...guards, modIs(keys.fileKey(child), 0n), modIs(keys.dirKey(child), 0n)];
      return { compares, ops, status: 201, written: { path: child, dir: req.dir }, event: (rev) => ({ action: 'create', node: fresh(child, req.value, req.dir, rev, ttl) }) };
    }
  }
}

/** True when a write needs the subtree depth (a directory delete). */
export function needsSubtree(req: WriteRequest, target: StoredNode): boolean {
  return ((req.kind === 'delete' && req.recursive) || req.kind === 'expire') && target.dir !== undefined;
}

/** An expire event's prevNode: with its expiration, without the (overdue) ttl, as etcd shows it. */
export function withoutTtl(n: V2Node): V2Node {
  const { ttl: _t, ...rest } = n;
  return rest;
}

/** A write decided without reading first: it applies only if the state is as its compares assume. */
export interface GuessedWrite {
  readonly compares: readonly Compare[];
  readonly ops: readonly RequestOp[];
  /** The answer, from the succeeded txn's responses. */
  result(responses: readonly ResponseOp[]): { readonly status: 200 | 201; event(rev: number): V2Event };
}

/**
 * The common `set` (a file value, no TTL, no refresh) as ONE txn with no read before it: it assumes
 * every ancestor is a directory and the target is a file without TTL, or nothing. Under that
 * assumption planWrite's ops do not depend on what was read (only the birth marker does, and a
 * nested txn decides that on the same pre-txn state), and the previous node is read by range ops
 * ahead of the puts. The compares check the assumption in the same txn, so no mod_revision guards
 * are needed; when it does not hold, the store plans from a read as for every other write.
 * undefined: a write this does not cover.
 */
export function guessSet(keys: KeySchema, req: WriteRequest): GuessedWrite | undefined {
  if (req.kind !== 'set' || req.dir || req.ttl !== undefined || req.refresh === true || isRoot(req.path)) return undefined;
  const path = req.path;
  const k = keys.nodeKeys(path);
  const compares: Compare[] = [];
  // The parent's marker vouches for every ancestor: v2 writes keep a directory marker only below
  // directories (a directory is made with its missing ancestors, never where a file is, and goes
  // with its whole subtree; an expiring file takes only its own keys), so this one compare says
  // what one per ancestor file and marker would. The root is always a directory.
  const parent = parentOf(path);
  if (!isRoot(parent)) compares.push(exists(keys.dirKey(parent)));
  compares.push(modIs(k.dir, 0n), modIs(k.ttl, 0n));
  const ops: RequestOp[] = [
    getOp(k.file),
    getOp(k.birth),
    // planWrite's order: the file, its birth marker when it replaces a file, the event.
    putOp(k.file, req.value),
    nestedTxnOp([exists(k.file)], [putOp(k.birth, '')]),
    eventPut(keys, 'set', path, false),
  ];
  return {
    compares, ops,
    result(responses) {
      const prev = nodeOf({ path, ...optional('file', first(responses[0])), ...optional('birth', first(responses[1])) });
      return {
        status: prev ? 200 : 201,
        event: (rev) => ({ action: 'set', node: fresh(path, req.value, false, rev, undefined), ...(prev ? { prevNode: prev } : {}) }),
      };
    },
  };
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}
