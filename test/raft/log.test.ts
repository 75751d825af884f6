// The raft log over MemoryStorage: appends, conflicts, compaction, describe.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaftLog } from '../../src/core/raft/log.js';
import { describe, MemoryStorage, setDebugChecks, type Entry, type Message } from '../../src/core/raft/index.js';

setDebugChecks(true);

const e = (term: number, index: number): Entry => ({ term, index, type: 'normal', data: new Uint8Array([index]) });

test('maybeAppend truncates a conflicting uncommitted suffix and keeps matching entries', () => {
  const storage = MemoryStorage.bootstrap([1n]);
  storage.append([e(1, 2), e(1, 3), e(2, 4)]);
  const log = new RaftLog(storage);
  assert.equal(log.lastIndex(), 4);
  assert.equal(log.maybeAppend(3, 1, 2, [e(3, 4), e(3, 5)]), 5);
  assert.equal(log.term(4), 3);
  assert.equal(log.committed, 2);
  assert.equal(log.maybeAppend(4, 2, 2, [e(2, 5)]), undefined, 'prev term mismatch');
  assert.deepEqual(log.findConflictByTerm(5, 2), { index: 3, term: 1 });
  const slice = log.slice(2, 6);
  assert.ok(slice !== 'compacted');
  assert.deepEqual(slice.map((x) => x.term), [1, 1, 3, 3]);
});

test('compaction: slices below firstIndex report compacted; term of the snapshot index survives', () => {
  const storage = MemoryStorage.bootstrap([1n]);
  storage.append([e(1, 2), e(1, 3), e(2, 4)]);
  storage.createSnapshot(3, { voters: [1n], learners: [] }, new Uint8Array());
  storage.compact(3);
  const log = new RaftLog(storage);
  assert.equal(log.firstIndex(), 4);
  assert.equal(log.slice(3, 4), 'compacted');
  assert.equal(log.term(3), 1);
  assert.equal(log.term(2), undefined);
});

test('describe gives one line per message type', () => {
  const base = { from: 1n, to: 2n, term: 3 };
  const all: Message[] = [
    { ...base, type: 'vote', lastIndex: 5, lastTerm: 2, transfer: false },
    { ...base, type: 'preVote', lastIndex: 5, lastTerm: 2, transfer: false },
    { ...base, type: 'voteResponse', reject: false },
    { ...base, type: 'preVoteResponse', reject: true },
    { ...base, type: 'append', prevIndex: 4, prevTerm: 2, entries: [e(3, 5)], commit: 4 },
    { ...base, type: 'appendResponse', index: 4, reject: true, hintIndex: 3, hintTerm: 2 },
    { ...base, type: 'heartbeat', commit: 4, ctx: 9n },
    { ...base, type: 'heartbeatResponse', ctx: undefined },
    { ...base, type: 'snapshot', snapshot: { meta: { index: 9, term: 3, voters: [1n, 2n], learners: [] }, data: new Uint8Array() } },
    { ...base, type: 'propose', entries: [e(0, 0)] },
    { ...base, type: 'readIndex', ctx: 1n },
    { ...base, type: 'readIndexResponse', ctx: 1n, index: 4 },
    { ...base, type: 'timeoutNow' },
    { ...base, type: 'transferLeader', transferee: 2n },
  ];
  for (const m of all) {
    const line = describe(m);
    assert.ok(line.startsWith(`1->2 ${m.type} term=3`), line);
    assert.ok(!line.includes('\n'));
  }
  assert.equal(describe(all[4]!), '1->2 append term=3 prev=2/4 commit=4 [3/5 1B]');
});
