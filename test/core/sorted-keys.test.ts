import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SortedKeys } from '../../src/core/mvcc/sorted-keys.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('SortedKeys agrees with a sorted array under random inserts, deletes and range scans', () => {
  const r = rng(42);
  const keys = new SortedKeys();
  const ref = new Set<string>();
  const randKey = (): string => String.fromCharCode(...Array.from({ length: 1 + Math.floor(r() * 3) }, () => Math.floor(r() * 256)));
  for (let i = 0; i < 20000; i++) {
    const k = randKey();
    if (r() < 0.7) {
      keys.insert(k);
      ref.add(k);
    } else {
      assert.equal(keys.delete(k), ref.delete(k));
    }
    if (i % 997 === 0) {
      const sorted = [...ref].sort();
      assert.equal(keys.size, sorted.length);
      const from = randKey();
      const end = r() < 0.3 ? null : randKey();
      assert.deepEqual([...keys.range(from, end)], sorted.filter((x) => x >= from && (end === null || x < end)));
    }
  }
});
