// The quorum arithmetic against naive definitions on random inputs (etcd-io/raft quorum/quick_test.go).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { committedIndex, voteResult } from '../../src/core/raft/quorum.js';
import { SeededRng } from '../../src/core/raft/rng.js';

test('committedIndex is the largest index a majority has reached', () => {
  const rng = new SeededRng(42);
  for (let run = 0; run < 2000; run++) {
    const n = 1 + rng.int(7);
    const voters = new Set(Array.from({ length: n }, (_, i) => BigInt(i + 1)));
    const match = new Map([...voters].map((id) => [id, rng.int(20)]));
    const got = committedIndex(voters, (id) => match.get(id)!);
    let naive = 0;
    for (let idx = 0; idx <= 20; idx++) {
      const reached = [...match.values()].filter((m) => m >= idx).length;
      if (reached > n / 2) naive = idx;
    }
    assert.equal(got, naive, JSON.stringify([...match.values()]));
  }
});

test('voteResult: won with a majority of yes, lost once a majority is out of reach', () => {
  const voters = new Set([1n, 2n, 3n]);
  assert.equal(voteResult(voters, new Map([[1n, true]])), 'pending');
  assert.equal(voteResult(voters, new Map([[1n, true], [2n, true]])), 'won');
  assert.equal(voteResult(voters, new Map([[1n, true], [2n, false], [3n, false]])), 'lost');
  assert.equal(voteResult(voters, new Map([[1n, true], [9n, true]])), 'pending', 'non-voters (learners) do not count');
});
