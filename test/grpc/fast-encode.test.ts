// The hand-written Range/Put response encoders write exactly what the generated ones write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PutResponse, RangeResponse, type ResponseHeader } from '../../src/gen/etcdserverpb/rpc.js';
import type { KeyValue } from '../../src/gen/mvccpb/kv.js';
import { encodePutResponse, encodeRangeResponse } from '../../src/grpc/fast-encode.js';

let seed = 11;
const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
// Varint edges: 0, 1 and 2 bytes, 2^31 and 2^53 neighbours, the 64-bit ends, negatives (int64).
const U64 = [0n, 1n, 127n, 128n, 16383n, 16384n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const I64 = [0n, 1n, 127n, 128n, 300n, 2n ** 35n, 2n ** 53n + 7n, 2n ** 63n - 1n, -1n, -128n, -(2n ** 63n)];
const bytes = (): Buffer => Buffer.alloc(pick([0, 0, 1, 5, 127, 128, 300, 16384, 70000]), rnd(256));

function header(): ResponseHeader | undefined {
  if (rnd(6) === 0) return undefined;
  return { clusterId: pick(U64), memberId: pick(U64), revision: pick(I64), raftTerm: pick(U64) };
}
function kv(): KeyValue {
  return { key: bytes(), createRevision: pick(I64), modRevision: pick(I64), version: pick(I64), value: bytes(), lease: pick(I64) };
}

test('Range and Put responses encode byte for byte as the generated encoders', () => {
  for (let i = 0; i < 3000; i++) {
    const range: RangeResponse = { header: header(), kvs: Array.from({ length: pick([0, 1, 2, 7, 100]) }, kv), more: rnd(2) === 0, count: pick(I64) };
    assert.deepEqual(encodeRangeResponse(range), Buffer.from(RangeResponse.encode(range).finish()));
    const put: PutResponse = { header: header(), prevKv: rnd(2) === 0 ? undefined : kv() };
    assert.deepEqual(encodePutResponse(put), Buffer.from(PutResponse.encode(put).finish()));
  }
});

test('values out of range for their field are refused as by the generated encoders', () => {
  const kvWith = (f: Partial<KeyValue>): KeyValue => ({ key: Buffer.from('k'), createRevision: 1n, modRevision: 1n, version: 1n, value: Buffer.alloc(0), lease: 0n, ...f });
  const bad: RangeResponse[] = [
    { header: { clusterId: 2n ** 64n, memberId: 0n, revision: 0n, raftTerm: 0n }, kvs: [], more: false, count: 0n },
    { header: { clusterId: -1n, memberId: 0n, revision: 0n, raftTerm: 0n }, kvs: [], more: false, count: 0n },
    { header: undefined, kvs: [kvWith({ lease: 2n ** 63n })], more: false, count: 0n },
    { header: undefined, kvs: [], more: false, count: -(2n ** 63n) - 1n },
  ];
  for (const m of bad) {
    assert.throws(() => RangeResponse.encode(m), /too large/);
    assert.throws(() => encodeRangeResponse(m), /too large/);
  }
});
