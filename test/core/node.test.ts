// The raft node driver on a real WAL with a fake state machine: a lone member elects itself,
// applies proposals in order exactly once, batches fsyncs, takes snapshots that release WAL
// segments, and after a restart replays only what the state machine does not hold yet.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { RaftNode } from '../../src/core/node.js';
import type { Entry } from '../../src/core/raft/index.js';
import { systemClock } from '../../src/util/clock.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

/** A state machine that remembers what it applied (and persists nothing itself). */
class FakeMachine {
  applied: string[] = [];
  index: number;
  constructor(index = 0) {
    this.index = index;
  }
  apply = async (entries: readonly Entry[]): Promise<void> => {
    for (const e of entries) {
      if (e.index <= this.index) continue;
      this.index = e.index;
      if (e.type === 'normal' && e.data.length > 0) this.applied.push(Buffer.from(e.data).toString());
    }
  };
}

function nodeOn(dir: string, sm: FakeMachine, snapshotCount = 1000, walSegmentBytes?: number, snapshotBytes?: number): RaftNode {
  return new RaftNode({
    id: 7n, initialVoters: [7n], walDir: join(dir, 'wal'), clock: systemClock, tickMs: 10, electionTicks: 10, heartbeatTicks: 1,
    snapshotCount, ...(walSegmentBytes ? { walSegmentBytes } : {}), ...(snapshotBytes ? { snapshotBytes } : {}),
    apply: sm.apply, flushState: async () => undefined, appliedIndex: sm.index,
    onError: (e) => { throw e; },
  });
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a lone member leads at once, applies 500 concurrent proposals in order with few fsyncs, and restarts', async () => {
  const dir = await makeTempDir('node-');
  try {
    const sm = new FakeMachine();
    let node = nodeOn(dir, sm);
    node.start();
    await node.whenLeader();
    assert.equal(node.term, 2, 'bootstrap term 1, first election term 2');
    for (let i = 0; i < 500; i++) assert.ok(node.propose(Buffer.from(`p${i}`)));
    await until('all applied', () => sm.applied.length === 500);
    assert.deepEqual(sm.applied, Array.from({ length: 500 }, (_, i) => `p${i}`));
    assert.ok(node.wal.syncs < 50, `500 proposals, ${node.wal.syncs} fdatasyncs`);
    await node.stop();

    // Restart: the machine lost its last 100 applies (say, not flushed): exactly those come back.
    const sm2 = new FakeMachine(sm.index - 100);
    node = nodeOn(dir, sm2);
    node.start();
    await node.whenLeader();
    assert.equal(node.term, 3);
    await until('replayed', () => sm2.applied.length === 100);
    assert.deepEqual(sm2.applied, Array.from({ length: 100 }, (_, i) => `p${400 + i}`));
    await node.stop();
  } finally {
    await removeTempDir(dir);
  }
});

test('proposals made in one event-loop turn (one socket read of a client burst) share one fdatasync', async () => {
  const dir = await makeTempDir('node-burst-');
  try {
    const sm = new FakeMachine();
    const node = nodeOn(dir, sm);
    node.start();
    await node.whenLeader();
    assert.ok(node.propose(Buffer.from('warm')));
    await until('warm applied', () => sm.applied.length === 1);
    await new Promise((r) => setTimeout(r, 30));
    for (let round = 0; round < 3; round++) {
      const before = node.wal.syncs;
      // As the HTTP/2 stream callbacks of one read each propose: the first must not be synced alone.
      for (let i = 0; i < 16; i++) assert.ok(node.propose(Buffer.from(`b${round}.${i}`)));
      await until(`burst ${round} applied`, () => sm.applied.length === 1 + 16 * (round + 1));
      assert.equal(node.wal.syncs - before, 1, `round ${round}: 16 proposals of one turn, ${node.wal.syncs - before} fdatasyncs`);
    }
    await node.stop();
  } finally {
    await removeTempDir(dir);
  }
});

test('snapshots every N entries release old WAL segments; a restart replays from the snapshot', async () => {
  const dir = await makeTempDir('node-snap-');
  try {
    const sm = new FakeMachine();
    let node = nodeOn(dir, sm, 100, 4096);
    node.start();
    await node.whenLeader();
    for (let i = 0; i < 1000; i++) {
      node.propose(Buffer.from(`v${i}`.padEnd(64, '.')));
      if (i % 50 === 49) await until('batch applied', () => sm.applied.length === i + 1);
    }
    await until('snapshotted', () => node.storage.snapshot().meta.index >= 900);
    const files = node.wal.files().length;
    assert.ok(files <= 12, `${files} WAL segments left after snapshots`);
    await node.stop();
    const sm2 = new FakeMachine(sm.index);
    node = nodeOn(dir, sm2, 100, 4096);
    node.start();
    await node.whenLeader();
    node.propose(Buffer.from('after'));
    await until('new proposal applied', () => sm2.applied.length === 1);
    assert.deepEqual(sm2.applied, ['after']);
    await node.stop();
  } finally {
    await removeTempDir(dir);
  }
});

test('a lone member holds no applied entry in memory; big values snapshot the WAL by bytes, and a restart replays the rest', async () => {
  const dir = await makeTempDir('node-bytes-');
  try {
    const sm = new FakeMachine();
    // Snapshots by count would never come (10,000 entries); by bytes, every 4 MiB of data.
    let node = nodeOn(dir, sm, 10_000, 1 << 20, 4 << 20);
    node.start();
    await node.whenLeader();
    const value = (i: number): Buffer => Buffer.alloc(256 * 1024, `v${i}.`);
    for (let i = 0; i < 40; i++) {
      node.propose(value(i));
      if (i % 8 === 7) await until('batch applied', () => sm.applied.length === i + 1);
    }
    await until('all applied', () => sm.applied.length === 40);
    await until('applied entries dropped from memory', () => node.storage.retainedBytes() === 0);
    // 10 MiB of values, 4 MiB per snapshot: old segments released.
    await until('WAL released by bytes', () => node.wal.files().length <= 7);
    await node.stop();
    // The machine lost its last 5 applies: the WAL (not memory) gives them back.
    const sm2 = new FakeMachine(sm.index - 5);
    node = nodeOn(dir, sm2, 10_000, 1 << 20, 4 << 20);
    node.start();
    await node.whenLeader();
    await until('replayed', () => sm2.applied.length === 5);
    assert.deepEqual(sm2.applied, Array.from({ length: 5 }, (_, i) => value(35 + i).toString()));
    await node.stop();
  } finally {
    await removeTempDir(dir);
  }
});

async function backlogCase(limit: { batches: number; bytes: number }, payloads: string[]): Promise<void> {
  const dir = await makeTempDir('node-backlog-');
  try {
    // A state machine whose storage commits land only when the test releases them.
    const sm = new FakeMachine();
    const held: (() => void)[] = [];
    const apply = async (entries: readonly Entry[]): Promise<void> => {
      await sm.apply(entries);
      await new Promise<void>((r) => held.push(r));
    };
    const node = new RaftNode({
      id: 7n, initialVoters: [7n], walDir: join(dir, 'wal'), clock: systemClock, tickMs: 10, electionTicks: 10, heartbeatTicks: 1,
      snapshotCount: 1000, apply, flushState: async () => undefined, appliedIndex: 0, onError: (e) => { throw e; },
      backlog: limit,
    });
    node.start();
    await node.whenLeader();
    // The leader's empty entry may be applied a moment after whenLeader: release its commit too.
    for (let i = 0; i < 3; i++) {
      for (const r of held.splice(0)) r();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(node.storageBacklog(), undefined, 'no backlog at start');
    // One proposal per batch: each applied batch leaves one commit outstanding.
    for (const [i, p] of payloads.entries()) {
      assert.equal(node.storageBacklog(), undefined, `no backlog before ${i} batches`);
      assert.ok(node.propose(Buffer.from(p)));
      await until(`${p} applied`, () => sm.applied.length === i + 1);
    }
    assert.deepEqual(sm.applied, payloads, 'applied while their commits are outstanding');
    const backlog = node.storageBacklog();
    assert.ok(backlog !== undefined, `a backlog with ${payloads.length} commits outstanding`);
    let drained = false;
    void backlog.then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(drained, false, 'holds until the commits land');
    for (const r of held.splice(0)) r();
    await until('drained', () => drained);
    assert.equal(node.storageBacklog(), undefined);
    await node.stop();
  } finally {
    await removeTempDir(dir);
  }
}

test('storage commits that fall behind hold new proposals (storageBacklog), not the apply of committed entries', async () => {
  await backlogCase({ batches: 6, bytes: 1 << 20 }, ['b0', 'b1', 'b2', 'b3', 'b4', 'b5']);
});

test('the storage backlog is bounded in bytes too: a few big batches hold new proposals', async () => {
  await backlogCase({ batches: 1000, bytes: 3000 }, ['x'.repeat(1000), 'y'.repeat(1000), 'z'.repeat(1000)]);
});
