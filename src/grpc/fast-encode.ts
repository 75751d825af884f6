// Hand-written protobuf encoders for the two hottest responses, Range and Put (KeyValues and the
// header): the size is computed first, then the message is written into ONE buffer of exactly that
// size. ts-proto's encoders (src/gen) write through a growing BinaryWriter that starts at 128
// bytes, doubles and copies as it grows, shifts every nested message of 128 bytes or more when it
// closes it, and copies the result twice more (finish(), then Buffer.from in the service
// definition): a Range of 100 KeyValues of 256 B cost ~100 µs to serialize that way, several
// times this. The output is byte-for-byte the generated encoders' (test/grpc/fast-encode.test.ts
// checks it on random messages); values out of range for their field throw as the generated
// encoders do.
import type { PutResponse, RangeResponse, ResponseHeader } from '../gen/etcdserverpb/rpc.js';
import type { KeyValue } from '../gen/mvccpb/kv.js';
import { isU64, numVarintSize, varint64Size, writeNumVarint, writeVarint64 } from '../util/varint64.js';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** A uint64 field's value, as the unsigned 64-bit integer it is written as. */
function u64(v: bigint, field: string): bigint {
  if (!isU64(v)) throw new Error(`value provided for field message.${field} of type uint64 too large`);
  return v;
}

/** An int64 field's value, as the unsigned 64-bit integer it is written as (negatives take 10 bytes). */
function i64(v: bigint, field: string): bigint {
  if (v >= 0n && v <= SAFE) return v; // the usual case
  if (v < I64_MIN || v > I64_MAX) throw new Error(`value provided for field message.${field} of type int64 too large`);
  return v < 0n ? BigInt.asUintN(64, v) : v;
}

/** A length-delimited field of `len` payload bytes (one-byte tag). */
function lenField(len: number): number {
  return 1 + numVarintSize(len) + len;
}

class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  num(n: number): void {
    this.pos = writeNumVarint(this.buf, this.pos, n);
  }

  big(u: bigint): void {
    this.pos = writeVarint64(this.buf, this.pos, u);
  }

  bytes(tag: number, b: Uint8Array): void {
    this.buf[this.pos++] = tag;
    this.num(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

function headerSize(h: ResponseHeader): number {
  let n = 0;
  if (h.clusterId !== 0n) n += 1 + varint64Size(u64(h.clusterId, 'clusterId'));
  if (h.memberId !== 0n) n += 1 + varint64Size(u64(h.memberId, 'memberId'));
  if (h.revision !== 0n) n += 1 + varint64Size(i64(h.revision, 'revision'));
  if (h.raftTerm !== 0n) n += 1 + varint64Size(u64(h.raftTerm, 'raftTerm'));
  return n;
}

function writeHeader(o: Out, h: ResponseHeader, size: number): void {
  o.buf[o.pos++] = 10;
  o.num(size);
  if (h.clusterId !== 0n) { o.buf[o.pos++] = 8; o.big(h.clusterId); }
  if (h.memberId !== 0n) { o.buf[o.pos++] = 16; o.big(h.memberId); }
  if (h.revision !== 0n) { o.buf[o.pos++] = 24; o.big(i64(h.revision, 'revision')); }
  if (h.raftTerm !== 0n) { o.buf[o.pos++] = 32; o.big(h.raftTerm); }
}

function kvSize(kv: KeyValue): number {
  let n = 0;
  if (kv.key.length !== 0) n += lenField(kv.key.length);
  if (kv.createRevision !== 0n) n += 1 + varint64Size(i64(kv.createRevision, 'createRevision'));
  if (kv.modRevision !== 0n) n += 1 + varint64Size(i64(kv.modRevision, 'modRevision'));
  if (kv.version !== 0n) n += 1 + varint64Size(i64(kv.version, 'version'));
  if (kv.value.length !== 0) n += lenField(kv.value.length);
  if (kv.lease !== 0n) n += 1 + varint64Size(i64(kv.lease, 'lease'));
  return n;
}

function writeKv(o: Out, tag: number, kv: KeyValue, size: number): void {
  o.buf[o.pos++] = tag;
  o.num(size);
  if (kv.key.length !== 0) o.bytes(10, kv.key);
  if (kv.createRevision !== 0n) { o.buf[o.pos++] = 16; o.big(i64(kv.createRevision, 'createRevision')); }
  if (kv.modRevision !== 0n) { o.buf[o.pos++] = 24; o.big(i64(kv.modRevision, 'modRevision')); }
  if (kv.version !== 0n) { o.buf[o.pos++] = 32; o.big(i64(kv.version, 'version')); }
  if (kv.value.length !== 0) o.bytes(42, kv.value);
  if (kv.lease !== 0n) { o.buf[o.pos++] = 48; o.big(i64(kv.lease, 'lease')); }
}

export function encodeRangeResponse(m: RangeResponse): Buffer {
  const hSize = m.header === undefined ? 0 : headerSize(m.header);
  let size = m.header === undefined ? 0 : lenField(hSize);
  const kvSizes = new Array<number>(m.kvs.length);
  for (let i = 0; i < m.kvs.length; i++) size += lenField((kvSizes[i] = kvSize(m.kvs[i]!)));
  if (m.more) size += 2;
  if (m.count !== 0n) size += 1 + varint64Size(i64(m.count, 'count'));
  const o = new Out(Buffer.allocUnsafe(size));
  if (m.header !== undefined) writeHeader(o, m.header, hSize);
  for (let i = 0; i < m.kvs.length; i++) writeKv(o, 18, m.kvs[i]!, kvSizes[i]!);
  if (m.more) {
    o.buf[o.pos++] = 24;
    o.buf[o.pos++] = 1;
  }
  if (m.count !== 0n) { o.buf[o.pos++] = 32; o.big(i64(m.count, 'count')); }
  return o.buf;
}

export function encodePutResponse(m: PutResponse): Buffer {
  const hSize = m.header === undefined ? 0 : headerSize(m.header);
  const pSize = m.prevKv === undefined ? 0 : kvSize(m.prevKv);
  const size = (m.header === undefined ? 0 : lenField(hSize)) + (m.prevKv === undefined ? 0 : lenField(pSize));
  const o = new Out(Buffer.allocUnsafe(size));
  if (m.header !== undefined) writeHeader(o, m.header, hSize);
  if (m.prevKv !== undefined) writeKv(o, 18, m.prevKv, pSize);
  return o.buf;
}
