// Large byte values allocated with spare room on both sides, so that the one message that will
// carry them (a put's value in its raft proposal) can be encoded around them in place instead of
// copying them: the gateway decodes a 1 MiB base64 value straight into what becomes the proposal
// (util/exact-writer.ts). The room is private to the allocation (its own ArrayBuffer, never a
// slice of Node's shared pool), and it is handed out once: the first encoding that uses it takes
// it, and any later encoding of the same value copies as usual.

/** Values shorter than this are allocated plainly (the room is not worth it). */
export const ROOM_MIN_VALUE_BYTES = 64 * 1024;
/**
 * Room before the value: a proposal's request ID, header (username included) and a put's key,
 * tags and lengths. A prefix longer than this (a long key) means the value is copied after all.
 */
export const ROOM_BEFORE = 512;
/** Room after: a put's fields after its value (lease, prev_kv, ignore_value, ignore_lease). */
export const ROOM_AFTER = 32;

const roomy = new WeakSet<ArrayBuffer>();

/** An uninitialized buffer of n bytes; from ROOM_MIN_VALUE_BYTES on, with room around it. */
export function allocWithRoom(n: number): Buffer {
  if (n < ROOM_MIN_VALUE_BYTES) return Buffer.allocUnsafe(n);
  const whole = Buffer.allocUnsafeSlow(ROOM_BEFORE + n + ROOM_AFTER);
  roomy.add(whole.buffer);
  return whole.subarray(ROOM_BEFORE, ROOM_BEFORE + n);
}

/**
 * The buffer of `before` + v.length + `after` bytes around v (v in the middle), if v was
 * allocated with that much room and its room was not taken yet; taking it makes it unavailable.
 */
export function takeRoom(v: Uint8Array, before: number, after: number): Buffer | undefined {
  const ab = v.buffer;
  if (!(ab instanceof ArrayBuffer) || !roomy.has(ab)) return undefined;
  if (v.byteOffset < before || ab.byteLength - v.byteOffset - v.length < after) return undefined;
  roomy.delete(ab);
  return Buffer.from(ab, v.byteOffset - before, before + v.length + after);
}
