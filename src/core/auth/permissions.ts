// A user's key permissions merged into two sets of disjoint intervals (read, write), like etcd's
// range permission cache (auth/range_perm_cache.go): a request is allowed when ONE merged interval
// covers all of it, so permissions granted on adjacent or overlapping ranges add up.
// Pure: built from the roles' permissions, queried with keys; no I/O.
import { Permission_Type as PermType, type Permission } from '../../gen/authpb/auth.js';

/** [start, end) over bytes; end null = no upper bound ("\0" as a range end, as etcd reads it). */
export interface KeyInterval {
  readonly start: Buffer;
  readonly end: Buffer | null;
}

export interface MergedPermissions {
  readonly read: readonly KeyInterval[];
  readonly write: readonly KeyInterval[];
}

/** The interval a permission grants: a single key is [key, key+"\0"). */
function intervalOf(key: Uint8Array, rangeEnd: Uint8Array): KeyInterval {
  const start = Buffer.from(key);
  if (rangeEnd.length === 0) return { start, end: Buffer.concat([start, Buffer.from([0])]) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: null };
  return { start, end: Buffer.from(rangeEnd) };
}

function cmpEnd(a: Buffer | null, b: Buffer | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return Buffer.compare(a, b);
}

/** Sorted, disjoint, non-adjacent intervals covering exactly the union of `ivs`. */
function merge(ivs: KeyInterval[]): KeyInterval[] {
  const sorted = ivs.filter((iv) => iv.end === null || Buffer.compare(iv.start, iv.end) < 0)
    .sort((a, b) => Buffer.compare(a.start, b.start));
  const out: KeyInterval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    // Touching intervals ([a,b) then [b,c)) merge too: together they cover [a,c).
    if (last !== undefined && (last.end === null || Buffer.compare(iv.start, last.end) <= 0)) {
      if (cmpEnd(iv.end, last.end) > 0) out[out.length - 1] = { start: last.start, end: iv.end };
    } else {
      out.push(iv);
    }
  }
  return out;
}

export function mergePermissions(perms: Iterable<Permission>): MergedPermissions {
  const read: KeyInterval[] = [];
  const write: KeyInterval[] = [];
  for (const p of perms) {
    const iv = intervalOf(p.key, p.rangeEnd);
    if (p.permType === PermType.READ || p.permType === PermType.READWRITE) read.push(iv);
    if (p.permType === PermType.WRITE || p.permType === PermType.READWRITE) write.push(iv);
  }
  return { read: merge(read), write: merge(write) };
}

/**
 * Whether `set` allows the request range: one key when rangeEnd is empty, [key, rangeEnd)
 * otherwise ("\0" = every key from key on), as etcd's isRangeOpPermitted. The intervals are
 * sorted and disjoint, so only the last one starting at or before `key` can hold the request: a
 * binary search, no allocation (this runs on every request of a non-root user).
 */
export function covers(set: readonly KeyInterval[], key: Uint8Array, rangeEnd: Uint8Array): boolean {
  let lo = 0;
  let hi = set.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(set[mid]!.start, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  const iv = set[lo - 1];
  if (iv === undefined) return false;
  if (iv.end !== null && Buffer.compare(key, iv.end) >= 0) return false;
  // One key is [key, key+"\0"), which fits below iv.end exactly when key does.
  if (rangeEnd.length === 0) return true;
  // From key on: only an interval without an upper bound holds it.
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return iv.end === null;
  // An empty request range ([b, a) with a <= b) needs only its start covered, as in etcd: it
  // passes here too, since a <= b < iv.end.
  return iv.end === null || Buffer.compare(rangeEnd, iv.end) <= 0;
}
