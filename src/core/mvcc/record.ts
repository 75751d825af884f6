// The stored form of one revision of one key (etcd keeps a marshaled KeyValue per revision).
// Layout: flags u8 | create f64 | mod f64 | version f64 | lease i64 | keyLen u32 | key | value.

export interface KV {
  readonly key: Buffer;
  readonly createRev: number;
  readonly modRev: number;
  readonly version: number;
  readonly lease: bigint;
  readonly value: Buffer;
}

const HEADER = 1 + 8 + 8 + 8 + 8 + 4;
const TOMBSTONE = 1;

export function encodeRecord(kv: KV, tombstone: boolean): Buffer {
  return writeRecord(kv, tombstone, Buffer.allocUnsafe(recordSize(kv)));
}

export function recordSize(kv: KV): number {
  return HEADER + kv.key.length + kv.value.length;
}

/** Writes the record at the start of `b` (at least recordSize(kv) long); returns that part of it. */
export function writeRecord(kv: KV, tombstone: boolean, b: Buffer): Buffer {
  b[0] = tombstone ? TOMBSTONE : 0;
  b.writeDoubleBE(kv.createRev, 1);
  b.writeDoubleBE(kv.modRev, 9);
  b.writeDoubleBE(kv.version, 17);
  b.writeBigInt64BE(kv.lease, 25);
  b.writeUInt32BE(kv.key.length, 33);
  kv.key.copy(b, HEADER);
  kv.value.copy(b, HEADER + kv.key.length);
  return b.subarray(0, HEADER + kv.key.length + kv.value.length);
}

export interface DecodedRecord {
  readonly kv: KV;
  readonly tombstone: boolean;
}

export function decodeRecord(b: Buffer): DecodedRecord {
  const keyLen = b.readUInt32BE(33);
  return {
    tombstone: (b[0]! & TOMBSTONE) !== 0,
    kv: {
      createRev: b.readDoubleBE(1),
      modRev: b.readDoubleBE(9),
      version: b.readDoubleBE(17),
      lease: b.readBigInt64BE(25),
      key: b.subarray(HEADER, HEADER + keyLen),
      value: b.subarray(HEADER + keyLen),
    },
  };
}

/** 16-byte big-endian (main, sub) key: byte order equals revision order. */
export function revKey(main: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeUIntBE(Math.floor(main / 2 ** 32), 0, 4);
  b.writeUInt32BE(main >>> 0, 4);
  b.writeUIntBE(Math.floor(sub / 2 ** 32), 8, 4);
  b.writeUInt32BE(sub >>> 0, 12);
  return b;
}

export function parseRevKey(b: Buffer): { main: number; sub: number } {
  return {
    main: b.readUInt32BE(0) * 2 ** 32 + b.readUInt32BE(4),
    sub: b.readUInt32BE(8) * 2 ** 32 + b.readUInt32BE(12),
  };
}
