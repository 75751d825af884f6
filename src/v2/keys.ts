// The v2 key schema in the v3 keyspace. Every v2 node is stored as v3 keys under one prefix P
// (plugin option `prefix`, default "/v2"), with the node's depth encoded so that all direct children
// of a directory form ONE contiguous v3 range (etcd v2v3's trick):
//
//   P/<DDD><path>           file node; the v3 value IS the v2 value (raw bytes, readable by v3 clients)
//   P/<DDD><path>/          directory node marker (empty value)
//   P/<DDD><path>\x01       "birth" marker of a file replaced by a v2 `set` (empty value; see below)
//   P/<DDD><path>\x02       "ttl" marker of a node with a TTL: value = expiration, ns since the Unix
//                           epoch (decimal); attached to the node's v3 lease (see TTLs below)
//   P/event                 the last v2 write: JSON {"action","key","dir"[,"refresh":true]} (put by
//                           every v2 write txn)
//
// <DDD> is the number of path components, zero-padded to 3 digits ("/a" -> 001, "/a/b" -> 002); the
// root directory "/" is implicit (no key). The children of directory D at depth d are exactly the
// v3 range with prefix `P/<d+1><D>/` (for the root: `P/001/`): files, child directory markers and
// birth markers, so a listing costs O(children); a recursive listing reads depth d+1, d+2, ... at one
// revision until a level is empty. Depth is limited to 999 (and by the txn op limit, see write.ts).
//
// Kept by every v2 write (each txn guarded on what it read): a directory marker exists only where
// every ancestor has one and no file key shares its path; a file only below directories. A set's
// guess (write.ts guessSet) relies on it to check one parent marker instead of every ancestor.
//
// Indexes are v3 revisions: X-Etcd-Index = the store revision, modifiedIndex = mod_revision of the
// file key (directory: of its marker), createdIndex = create_revision of that key, except for a file
// that a v2 `set` replaced in place: v3 keeps create_revision across puts but v2 gives the replaced
// node a new createdIndex, so that `set` also puts the birth marker and createdIndex = the marker's
// mod_revision. update/compareAndSwap never touch the marker; every delete removes it.
//
// The event key records each write's v2 action in the same revision, so a watcher can recover the
// action (and the node: for a recursive delete, the directory's key) from v3 history. Refreshes
// record "refresh":true (watchers skip them); unknown actions are skipped by watchers too.
//
// TTLs (ttl.ts, write.ts). Every write with ttl=N grants ONE fresh v3 lease for the node (before its
// txn) and attaches it in the txn: a file's key and its ttl marker carry the lease; a birth marker
// never does (nodeOf ignores a birth marker older than the file key's create_revision, so one left
// behind by an expiry is harmless). Overwriting without ttl puts the keys with lease 0 (detached) and
// deletes the ttl marker; the old lease is then revoked (best effort; a leaked lease has no keys
// and lapses by itself). Directory markers are never leased (a TTL update of a directory must not
// change its modifiedIndex, spec 14.6): a directory's lease holds only its ttl marker.
//
// Expiry, two ways, both seen by watchers as `expire`:
//  * lease expiry (files with ttl >= 2): the backend revokes the lease, deleting the file key and
//    its ttl marker in ONE revision with NO write of P/event. A watcher therefore reads a revision
//    that deletes a node key (file or directory marker), whose key had a lease at revision-1, and
//    that has no P/event put, as an `expire` of that node (prevNode read at revision-1).
//  * the store's sweeper timer (directories, and files with ttl 0 or 1, below the backend's 2 s
//    minimum lease TTL): at the expiration it commits one txn deleting the node (a directory: its
//    whole subtree, like a recursive delete) with P/event {"action":"expire"}, then revokes the lease.
//    The timer lives in the gateway process that wrote the TTL; the lease (TTL max(N,2), +2 s for a
//    directory) is the backstop if that process is gone: a file then still expires at ~2 s, while a
//    directory only loses its ttl marker (becomes permanent) - a documented limitation.
import { prefixEnd } from '../util/bytes.js';
import { depthOf } from './path.js';

export const DEFAULT_V2_PREFIX = '/v2';
export const MAX_DEPTH = 999;

export type KeyKind = 'file' | 'dir' | 'birth' | 'ttl';

export interface ParsedKey {
  readonly path: string;
  readonly kind: KeyKind;
}

/** The four keys of one v2 node. */
export interface NodeKeys {
  readonly file: Buffer;
  readonly dir: Buffer;
  readonly birth: Buffer;
  readonly ttl: Buffer;
}

export class KeySchema {
  private readonly base: string;
  private readonly event: Buffer;
  constructor(readonly prefix: string = DEFAULT_V2_PREFIX) {
    this.base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
    this.event = Buffer.from(this.base + '/event');
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

  ttlKey(p: string): Buffer {
    return Buffer.from(this.depthPart(depthOf(p)) + p + '\x02');
  }

  /** fileKey, dirKey, birthKey and ttlKey of p, from one encoding of the path. */
  nodeKeys(p: string): NodeKeys {
    const file = this.fileKey(p);
    const n = file.length;
    const suffixed = (last: number): Buffer => {
      const k = Buffer.allocUnsafe(n + 1);
      file.copy(k, 0, 0, n);
      k[n] = last;
      return k;
    };
    return { file, dir: suffixed(0x2f), birth: suffixed(0x01), ttl: suffixed(0x02) };
  }

  /** The whole v2 keyspace [key, rangeEnd) (what a v2 watcher watches). */
  allRange(): { key: Buffer; rangeEnd: Buffer } {
    const key = Buffer.from(this.base + '/');
    return { key, rangeEnd: prefixEnd(key) };
  }

  /** P/event (one buffer for every caller: no one writes into a key). */
  eventKey(): Buffer {
    return this.event;
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
    if (rest.endsWith('\x02')) return { path: rest.slice(0, -1), kind: 'ttl' };
    return { path: rest, kind: 'file' };
  }
}
