// The v2 key schema in the v3 keyspace. Every v2 node is stored as v3 keys under one prefix P
// (plugin option `prefix`, default "/v2"), with the node's depth encoded so that all direct children
// of a directory form ONE contiguous v3 range (etcd v2v3's trick):
//
//   P/<DDD><path>           file node; the v3 value IS the v2 value (raw bytes, readable by v3 clients)
//   P/<DDD><path>/          directory node marker (empty value)
//   P/<DDD><path>\x01       "birth" marker of a file replaced by a v2 `set` (empty value; see below)
//   P/event                 the last v2 write: JSON {"action","key","dir"} (put by every v2 write txn)
//
// <DDD> is the number of path components, zero-padded to 3 digits ("/a" -> 001, "/a/b" -> 002); the
// root directory "/" is implicit (no key). The children of directory D at depth d are exactly the
// v3 range with prefix `P/<d+1><D>/` (for the root: `P/001/`): files, child directory markers and
// birth markers, so a listing costs O(children); a recursive listing reads depth d+1, d+2, ... at one
// revision until a level is empty. Depth is limited to 999 (and by the txn op limit, see write.ts).
//
// Indexes are v3 revisions: X-Etcd-Index = the store revision, modifiedIndex = mod_revision of the
// file key (directory: of its marker), createdIndex = create_revision of that key, except for a file
// that a v2 `set` replaced in place: v3 keeps create_revision across puts but v2 gives the replaced
// node a new createdIndex, so that `set` also puts the birth marker and createdIndex = the marker's
// mod_revision. update/compareAndSwap never touch the marker; every delete removes it.
//
// The event key records each write's v2 action in the same revision, so a watcher can recover the
// action (and the node: for a recursive delete, the directory's key) from v3 history.
import { prefixEnd } from '../util/bytes.js';
import { depthOf } from './path.js';

export const DEFAULT_V2_PREFIX = '/v2';
export const MAX_DEPTH = 999;

export type KeyKind = 'file' | 'dir' | 'birth';

export interface ParsedKey {
  readonly path: string;
  readonly kind: KeyKind;
}

export class KeySchema {
  private readonly base: string;
  constructor(readonly prefix: string = DEFAULT_V2_PREFIX) {
    this.base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  }

  private depthPart(depth: number): string {
    return `${this.base}/${String(depth).padStart(3, '0')}`;
  }

  fileKey(p: string): Buffer {
    return Buffer.from(this.depthPart(depthOf(p)) + p);
  }

  dirKey(p: string): Buffer {
    return Buffer.from(this.depthPart(depthOf(p)) + p + '/');
  }

  birthKey(p: string): Buffer {
    return Buffer.from(this.depthPart(depthOf(p)) + p + '\x01');
  }

  eventKey(): Buffer {
    return Buffer.from(this.base + '/event');
  }

  /** The range [key, rangeEnd) of the nodes `levelsBelow` levels below directory dir. */
  levelRange(dir: string, levelsBelow: number): { key: Buffer; rangeEnd: Buffer } {
    const inner = dir === '/' ? '/' : dir + '/';
    const key = Buffer.from(this.depthPart(depthOf(dir) + levelsBelow) + inner);
    return { key, rangeEnd: prefixEnd(key) };
  }

  /** The v2 node a v3 key of this schema stands for (undefined for other keys). */
  parse(key: Buffer): ParsedKey | undefined {
    const s = key.toString();
    const head = this.base + '/';
    if (!s.startsWith(head) || s.length < head.length + 4) return undefined;
    const rest = s.slice(head.length + 3);
    if (!rest.startsWith('/')) return undefined;
    if (rest.endsWith('/')) return { path: rest.slice(0, -1), kind: 'dir' };
    if (rest.endsWith('\x01')) return { path: rest.slice(0, -1), kind: 'birth' };
    return { path: rest, kind: 'file' };
  }
}
