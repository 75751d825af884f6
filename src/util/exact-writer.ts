// Protobuf encoding into ONE buffer of exactly the message's size, with each bytes field copied
// once. @bufbuild/protobuf's BinaryWriter (which ts-proto's generated encode functions write to)
// grows its buffer by doubling and copies the result out at finish(): for a 1 MiB value that is
// about 4 MiB of allocations (128 B .. 2 MiB) and a final 1 MiB copy. Here the generated encode
// function runs twice over the same message: once against a counter that only adds up sizes
// (and records the length of every nested message, in fork order), then against the buffer
// allocated at that size, writing each nested message's length prefix from the first pass.
//
// A bytes field allocated with room around it (util/headroom.ts: a large value the gateway decoded)
// is not even copied once: the buffer is laid out around it and everything else is written into
// its room.
//
// Only the methods ts-proto's generated code calls for this project's messages are implemented
// (test/core/exact-writer.test.ts checks byte equality with BinaryWriter on every request type).
import type { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ROOM_MIN_VALUE_BYTES, takeRoom } from './headroom.js';
import { isU64, numVarintSize, varint64Size, writeNumVarint, writeVarint64 } from './varint64.js';

/** The 64-bit two's complement of an int64/uint64 field value (string, number or bigint). */
function asU64(v: string | number | bigint): bigint {
  if (typeof v === 'bigint' && isU64(v)) return v; // without asUintN's allocation
  return BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v));
}

/** The writer methods ts-proto's generated code uses for our messages (as BinaryWriter names them). */
interface Encoder {
  uint32(v: number): this;
  int32(v: number): this;
  int64(v: string | number | bigint): this;
  uint64(v: string | number | bigint): this;
  bool(v: boolean): this;
  string(v: string): this;
  bytes(v: Uint8Array): this;
  fork(): this;
  join(): this;
}

/** Pass 1: sizes only. */
class Sizer implements Encoder {
  size = 0;
  /** The payload length of every fork, in fork order. */
  readonly lengths: number[] = [];
  /**
   * The largest bytes field that may already sit where it belongs: its offset without the length
   * prefixes of the messages around it (not known until they end), and their fork slots.
   */
  inPlace: { value: Uint8Array; at: number; enclosing: number[] } | undefined;
  private readonly stack: { start: number; slot: number }[] = [];

  uint32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`invalid uint32: ${v}`);
    this.size += numVarintSize(v);
    return this;
  }

  int32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`invalid int32: ${v}`);
    // A negative int32 is sign-extended to 64 bits: always 10 bytes.
    this.size += v < 0 ? 10 : numVarintSize(v);
    return this;
  }

  int64(v: string | number | bigint): this {
    this.size += varint64Size(asU64(v));
    return this;
  }

  uint64(v: string | number | bigint): this {
    return this.int64(v);
  }

  bool(_v: boolean): this {
    this.size += 1;
    return this;
  }

  string(v: string): this {
    if (typeof v !== 'string') throw new Error(`invalid string: ${typeof v}`);
    const n = Buffer.byteLength(v, 'utf8');
    this.size += numVarintSize(n) + n;
    return this;
  }

  bytes(v: Uint8Array): this {
    if (!(v instanceof Uint8Array)) throw new Error(`invalid bytes: ${typeof v}`);
    this.size += numVarintSize(v.length);
    if (v.length >= ROOM_MIN_VALUE_BYTES && v.length > (this.inPlace?.value.length ?? 0)) {
      this.inPlace = { value: v, at: this.size, enclosing: this.stack.map((f) => f.slot) };
    }
    this.size += v.length;
    return this;
  }

  fork(): this {
    this.stack.push({ start: this.size, slot: this.lengths.length });
    this.lengths.push(0);
    return this;
  }

  /** Where the in-place candidate's bytes start in the encoding. */
  inPlaceOffset(): number {
    const c = this.inPlace;
    if (c === undefined) return 0;
    let at = c.at;
    for (const slot of c.enclosing) at += numVarintSize(this.lengths[slot]!);
    return at;
  }

  join(): this {
    const f = this.stack.pop();
    if (f === undefined) throw new Error('exact-writer: join without fork');
    const len = this.size - f.start;
    this.lengths[f.slot] = len;
    this.size += numVarintSize(len);
    return this;
  }
}

/** Pass 2: writes into a buffer of the size pass 1 found. */
class Filler implements Encoder {
  private forks = 0;

  constructor(readonly buf: Buffer, public pos: number, private readonly lengths: readonly number[]) {}

  private varint32(v: number): void {
    this.pos = writeNumVarint(this.buf, this.pos, v);
  }

  private varint64(v: bigint): void {
    this.pos = writeVarint64(this.buf, this.pos, v);
  }

  uint32(v: number): this {
    this.varint32(v >>> 0);
    return this;
  }

  int32(v: number): this {
    if (v < 0) this.varint64(BigInt.asUintN(64, BigInt(v)));
    else this.varint32(v);
    return this;
  }

  int64(v: string | number | bigint): this {
    this.varint64(asU64(v));
    return this;
  }

  uint64(v: string | number | bigint): this {
    return this.int64(v);
  }

  bool(v: boolean): this {
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  string(v: string): this {
    const n = Buffer.byteLength(v, 'utf8');
    this.varint32(n);
    this.pos += this.buf.write(v, this.pos, n, 'utf8');
    return this;
  }

  bytes(v: Uint8Array): this {
    this.varint32(v.length);
    // The value the buffer was laid out around is already there.
    if (v.buffer !== this.buf.buffer || v.byteOffset !== this.buf.byteOffset + this.pos) this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  fork(): this {
    const len = this.lengths[this.forks++];
    if (len === undefined) throw new Error('exact-writer: more forks than the sizing pass saw');
    this.varint32(len);
    return this;
  }

  join(): this {
    return this;
  }
}

/**
 * encode(msg, writer) as ts-proto generates it, run into one buffer of exactly
 * `prefixBytes` + the encoded size; the first prefixBytes are left for the caller to fill.
 */
export function encodeExact<T>(
  encode: (msg: T, writer: BinaryWriter) => unknown, msg: T, prefixBytes = 0,
): Buffer {
  const sizer = new Sizer();
  encode(msg, sizer as unknown as BinaryWriter);
  const total = prefixBytes + sizer.size;
  const at = prefixBytes + sizer.inPlaceOffset();
  const around = sizer.inPlace && takeRoom(sizer.inPlace.value, at, total - at - sizer.inPlace.value.length);
  // Else its own ArrayBuffer (not a slice of Node's shared pool): raft keeps entries for a while,
  // and a small one would pin a whole 8 KiB pool slab.
  const buf = around || Buffer.allocUnsafeSlow(total);
  const filler = new Filler(buf, prefixBytes, sizer.lengths);
  encode(msg, filler as unknown as BinaryWriter);
  // Both passes ran the same code over the same message: a mismatch is a bug here, never a
  // request's fault, and must not put a half-written entry into the log.
  if (filler.pos !== buf.length) throw new Error(`exact-writer: wrote ${filler.pos - prefixBytes} bytes of ${sizer.size}`);
  return buf;
}
