// Byte-string helpers. Keys below the edges are Buffers; in-memory indexes use "binary" strings
// (latin1: one char per byte), whose < order is exactly unsigned byte order.

export const EMPTY = Buffer.alloc(0);
const ZERO = Buffer.from([0]);

export function toBin(b: Uint8Array): string {
  // Keys are nearly always Buffers already: wrapping one again costs more than the conversion.
  return (b instanceof Buffer ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('latin1');
}

export function fromBin(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** True for the one-byte "\x00" range end that means "every key >= key". */
export function isFromKey(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** The smallest key greater than every key with this prefix ("\x00" when there is none). */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return ZERO;
}

/**
 * A key interval in binary-string form: [key, end). end === undefined: the single key;
 * end === null: no upper bound. Built once from a request's key and range_end (etcd's rules).
 */
export interface KeyRange {
  readonly key: string;
  readonly end: string | null | undefined;
}

export function keyRange(key: Uint8Array, rangeEnd: Uint8Array): KeyRange {
  const k = toBin(key);
  if (rangeEnd.length === 0) return { key: k, end: undefined };
  if (isFromKey(rangeEnd)) return { key: k, end: null };
  return { key: k, end: toBin(rangeEnd) };
}

export function inRange(r: KeyRange, k: string): boolean {
  if (r.end === undefined) return k === r.key;
  return k >= r.key && (r.end === null || k < r.end);
}
