// util/h2-frames.ts: padding and priority fields taken off HEADERS/DATA payloads (and refused when
// they do not fit), and header blocks framed as HEADERS + CONTINUATION within a frame size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTINUATION, END_HEADERS, END_STREAM, frameBlock, HEADERS, headersFragment, PADDED, PRIORITY, unpad } from '../../src/util/h2-frames.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

test('unpad and headersFragment: padding and priority fields off, malformed ones refused', () => {
  assert.deepEqual(unpad(0, b(1, 2, 3)), b(1, 2, 3));
  assert.deepEqual(unpad(PADDED, b(2, 7, 0, 0)), b(7), 'pad length 2');
  assert.deepEqual(unpad(PADDED, b(3, 0, 0, 0)), b(), 'all padding');
  assert.equal(unpad(PADDED, b(4, 0, 0, 0)), undefined, 'padding longer than the payload');
  assert.equal(unpad(PADDED, b()), undefined, 'no pad length byte');

  const prio = [0, 0, 0, 3, 16];
  assert.deepEqual(headersFragment(PRIORITY, b(...prio, 9, 9)), { fragment: b(9, 9), priority: b(...prio) });
  assert.deepEqual(headersFragment(PADDED | PRIORITY, b(1, ...prio, 9, 0)), { fragment: b(9), priority: b(...prio) });
  assert.deepEqual(headersFragment(0, b(9)), { fragment: b(9), priority: undefined });
  assert.equal(headersFragment(PRIORITY, b(0, 0, 0, 3)), undefined, 'short priority fields');
  assert.equal(headersFragment(PADDED | PRIORITY, b(2, ...prio)), undefined, 'padding eats the priority fields');
});

test('frameBlock: one HEADERS frame, or HEADERS + CONTINUATION within the frame size', () => {
  const parse = (frames: Buffer[]): { type: number; flags: number; stream: number; payload: Buffer }[] => {
    const all = Buffer.concat(frames);
    const out = [];
    for (let at = 0; at < all.length;) {
      const len = all.readUIntBE(at, 3);
      out.push({ type: all[at + 3]!, flags: all[at + 4]!, stream: all.readUInt32BE(at + 5), payload: all.subarray(at + 9, at + 9 + len) });
      at += 9 + len;
    }
    return out;
  };
  const block = Buffer.alloc(40_000, 7);
  const small = parse(frameBlock(3, END_STREAM, undefined, block.subarray(0, 100)));
  assert.deepEqual(small.map((f) => [f.type, f.flags, f.stream, f.payload.length]), [[HEADERS, END_STREAM | END_HEADERS, 3, 100]]);

  const prio = b(0, 0, 0, 1, 5);
  const big = parse(frameBlock(5, 0, prio, block));
  assert.deepEqual(big.map((f) => [f.type, f.flags, f.payload.length]), [
    [HEADERS, PRIORITY, 16_384], [CONTINUATION, 0, 16_384], [CONTINUATION, END_HEADERS, 40_000 - (16_384 - 5) - 16_384],
  ]);
  assert.deepEqual(big[0]!.payload.subarray(0, 5), prio);
  assert.deepEqual(Buffer.concat([big[0]!.payload.subarray(5), ...big.slice(1).map((f) => f.payload)]), block);

  const larger = parse(frameBlock(7, 0, undefined, block, 32_768));
  assert.deepEqual(larger.map((f) => [f.type, f.flags, f.payload.length]), [[HEADERS, 0, 32_768], [CONTINUATION, END_HEADERS, 40_000 - 32_768]]);
});
