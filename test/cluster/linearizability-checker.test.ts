// The register checker itself, on small histories whose answer is known.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRegisters, type HistoryOp } from '../helpers/linearizability.js';

const w = (call: number, ret: number | undefined, value: string, key = 'k'): HistoryOp => ({ key, call, ret, op: { kind: 'write', value } });
const r = (call: number, ret: number, value: string | undefined, key = 'k'): HistoryOp => ({ key, call, ret, op: { kind: 'read', value } });
const cas = (call: number, ret: number | undefined, expected: string, value: string, ok: boolean): HistoryOp => ({ key: 'k', call, ret, op: { kind: 'cas', expected, value, ok } });

test('sequential and overlapping histories that have a linearization are accepted', () => {
  assert.ok(checkRegisters([w(0, 1, 'a'), r(2, 3, 'a'), w(4, 5, 'b'), r(6, 7, 'b')]).ok);
  // Concurrent write and read: the read may see either value.
  assert.ok(checkRegisters([w(0, 1, 'a'), w(2, 10, 'b'), r(3, 4, 'a'), r(5, 6, 'b')]).ok);
  assert.ok(checkRegisters([w(0, 1, 'a'), cas(2, 3, 'a', 'b', true), cas(4, 5, 'a', 'c', false), r(6, 7, 'b')]).ok);
  // A timed-out write may have happened late...
  assert.ok(checkRegisters([w(0, 1, 'a'), w(2, undefined, 'b'), r(3, 4, 'a'), r(50, 51, 'b')]).ok);
  // ...or never.
  assert.ok(checkRegisters([w(0, 1, 'a'), w(2, undefined, 'b'), r(50, 51, 'a')]).ok);
  // Keys are independent.
  assert.ok(checkRegisters([w(0, 1, 'a', 'x'), w(0, 1, 'b', 'y'), r(2, 3, 'a', 'x'), r(2, 3, 'b', 'y')]).ok);
});

test('a stale read after a completed write is rejected (and the key is named)', () => {
  const res = checkRegisters([w(0, 1, 'a'), w(2, 3, 'b'), r(4, 5, 'a')]);
  assert.equal(res.ok, false);
  assert.equal(res.key, 'k');
  assert.equal(res.ops?.length, 3);
});

test('reads going back in time, impossible CAS outcomes and phantom values are rejected', () => {
  // b then a: two sequential reads cannot flip back while no write of a follows.
  assert.equal(checkRegisters([w(0, 1, 'a'), w(2, 20, 'b'), r(3, 4, 'b'), r(5, 6, 'a')]).ok, false);
  // Two CAS from the same value cannot both succeed.
  assert.equal(checkRegisters([w(0, 1, 'a'), cas(2, 10, 'a', 'b', true), cas(2, 10, 'a', 'c', true)]).ok, false);
  // A failed CAS whose expected value was surely there.
  assert.equal(checkRegisters([w(0, 1, 'a'), cas(2, 3, 'a', 'b', false)]).ok, false);
  // A value nobody wrote.
  assert.equal(checkRegisters([w(0, 1, 'a'), r(2, 3, 'zzz')]).ok, false);
  // A lost acknowledged write: read the initial (absent) value after it returned.
  assert.equal(checkRegisters([w(0, 1, 'a'), r(2, 3, undefined)]).ok, false);
});

test('a few hundred overlapping operations are checked quickly', () => {
  const ops: HistoryOp[] = [];
  let t = 0;
  let cur: string | undefined;
  for (let i = 0; i < 300; i++) {
    // 3 clients interleaved: each op overlaps its neighbours; outcomes follow a real order.
    const v = `v${i}`;
    if (i % 3 === 0) {
      ops.push(w(t, t + 5, v));
      cur = v;
    } else {
      ops.push(r(t + 1, t + 6, cur));
    }
    t += 3;
  }
  const start = performance.now();
  assert.ok(checkRegisters(ops).ok);
  assert.ok(performance.now() - start < 2000);
});
