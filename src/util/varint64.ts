// Protobuf varints of 64-bit fields held as bigints, without BigInt arithmetic: every BigInt
// shift or mask allocates, and the values above 2^53 that hot paths encode over and over (the
// cluster and member IDs in every response header, the request ID in every proposal) cost ~20
// allocations each that way. Values up to 2^53 are written as numbers; larger ones go through a
// DataView as two 32-bit halves.

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const U64_MAX = (1n << 64n) - 1n;
const halves = new DataView(new ArrayBuffer(8));

/** Whether v fits a uint64 field (comparisons only: no allocation). */
export function isU64(v: bigint): boolean {
  return v >= 0n && v <= U64_MAX;
}

/** The varint size of n (0 <= n <= 2^53). */
export function numVarintSize(n: number): number {
  if (n < 0x10000000) return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** The varint size of u (0 <= u < 2^64). */
export function varint64Size(u: bigint): number {
  if (u <= SAFE) return numVarintSize(Number(u));
  halves.setBigUint64(0, u);
  // Above 2^53 the high half is at least 2^21: 8 bytes up to 2^56, 9 up to 2^63, else 10.
  const hi = halves.getUint32(0);
  return hi < 2 ** 24 ? 8 : hi < 2 ** 31 ? 9 : 10;
}

/** Writes n (0 <= n <= 2^53) as a varint at pos; returns the position after it. */
export function writeNumVarint(buf: Uint8Array, pos: number, n: number): number {
  if (n <= 0xffffffff) {
    // Below 2^32 (lengths, most revisions and IDs): 32-bit shifts.
    while (n > 0x7f) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
    return pos;
  }
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Writes u (0 <= u < 2^64) as a varint at pos; returns the position after it. */
export function writeVarint64(buf: Uint8Array, pos: number, u: bigint): number {
  if (u <= SAFE) return writeNumVarint(buf, pos, Number(u));
  halves.setBigUint64(0, u);
  let hi = halves.getUint32(0);
  let lo = halves.getUint32(4);
  while (hi !== 0 || lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}
