import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyIndex } from '../../src/core/mvcc/key-index.js';

test('findAt follows generations and tombstones', () => {
  const k = new KeyIndex();
  k.put(2, 0);
  k.put(4, 0);
  k.tombstone(6, 0);
  k.put(8, 1);
  assert.equal(k.findAt(1), undefined);
  assert.deepEqual(k.findAt(2), { main: 2, sub: 0 });
  assert.deepEqual(k.findAt(5), { main: 4, sub: 0 });
  assert.equal(k.findAt(6), undefined);
  assert.equal(k.findAt(7), undefined);
  assert.deepEqual(k.findAt(100), { main: 8, sub: 1 });
});

test('compact keeps the newest revision at or below the compaction point', () => {
  const k = new KeyIndex();
  k.put(2, 0);
  k.put(4, 0);
  k.tombstone(6, 0);
  k.put(8, 0);
  k.put(10, 0);
  const dropped: number[] = [];
  k.compact(5, (m) => dropped.push(m));
  assert.deepEqual(dropped, [2]);
  assert.deepEqual(k.findAt(5), { main: 4, sub: 0 });
  k.compact(6, (m) => dropped.push(m));
  assert.deepEqual(dropped, [2, 4, 6]);
  k.compact(9, (m) => dropped.push(m));
  assert.deepEqual(dropped, [2, 4, 6]);
  assert.deepEqual(k.findAt(9), { main: 8, sub: 0 });
  k.tombstone(12, 0);
  k.compact(12, (m) => dropped.push(m));
  assert.deepEqual(dropped, [2, 4, 6, 8, 10, 12]);
  assert.ok(k.isEmpty());
});
