// The 64-bit varints behind the hand-written response encoders and the proposal encoder: the
// same bytes and sizes as protobuf's own varint for every size class and random large values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { isU64, varint64Size, writeVarint64 } from '../../src/util/varint64.js';

function reference(u: bigint): Uint8Array {
  return new BinaryWriter().uint64(u).finish();
}

function ours(u: bigint): Uint8Array {
  const buf = new Uint8Array(12).fill(0xee);
  const end = writeVarint64(buf, 1, u);
  assert.equal(end - 1, varint64Size(u), `size of ${u}`);
  assert.equal(buf[0], 0xee, 'nothing written before pos');
  assert.equal(buf[end], 0xee, 'nothing written after the varint');
  return buf.subarray(1, end);
}

test('varints of 64-bit values match protobuf\'s, at every size class and for random large values', () => {
  const values: bigint[] = [];
  for (let bits = 0n; bits <= 64n; bits++) {
    const p = 1n << bits;
    values.push(p - 1n, p, p + 1n);
  }
  const valid = values.filter(isU64);
  assert.ok(!isU64(-1n) && !isU64(1n << 64n) && isU64((1n << 64n) - 1n));
  // Random values above 2^53.
  let x = 0x9e3779b97f4a7c15n;
  const random: bigint[] = [];
  for (let i = 0; i < 600; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
    random.push(x >> BigInt(i % 11));
  }
  for (const u of [...valid, ...random]) assert.deepEqual(ours(u), reference(u), String(u));
});
