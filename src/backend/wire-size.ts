// Encoded sizes of etcd messages computed without encoding them: what the request-size limits
// are checked on, for the one request that carries big values (Put).
import type { PutRequest } from '../gen/etcdserverpb/rpc.js';

/** Bytes of a protobuf varint holding n (as uint64: negatives take 10). */
export function varintLen(n: bigint): number {
  let v = BigInt.asUintN(64, n);
  let len = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    len++;
  }
  return len;
}

/** A length-delimited field: tag, length varint, payload. */
export function lenFieldSize(tagBytes: number, len: number): number {
  return tagBytes + varintLen(BigInt(len)) + len;
}

export function putRequestSize(p: PutRequest): number {
  return (p.key.length > 0 ? lenFieldSize(1, p.key.length) : 0)
    + (p.value.length > 0 ? lenFieldSize(1, p.value.length) : 0)
    + (p.lease !== 0n ? 1 + varintLen(p.lease) : 0)
    + (p.prevKv ? 2 : 0) + (p.ignoreValue ? 2 : 0) + (p.ignoreLease ? 2 : 0);
}
