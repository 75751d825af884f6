// The ReadIndex batching of linearizable reads (src/core/read-index.ts), with a hand-run event
// loop and clock: the readers of one turn share one request, readers arriving meanwhile share the
// next one (sent as soon as the first is answered), a lost request is asked again under a new ctx,
// a late one times its readers out, and close() fails everyone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadIndexBatcher } from '../../src/core/read-index.js';

function harness() {
  const sent: bigint[] = [];
  const deferred: (() => void)[] = [];
  let now = 1000;
  const b = new ReadIndexBatcher({
    send: (ctx) => sent.push(ctx),
    defer: (fn) => deferred.push(fn),
    nowMs: () => now,
    retryMs: 500,
    timeoutMs: 5000,
    timeoutError: () => new Error('timeout'),
    closedError: () => new Error('stopped'),
  });
  const turn = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  const advance = (ms: number): void => {
    now += ms;
  };
  return { b, sent, turn, advance };
}

/** Settles pending promise callbacks; resolves with which readers have settled and how. */
async function states(ps: Promise<void>[]): Promise<string[]> {
  const out = ps.map(() => 'waiting');
  ps.forEach((p, i) => p.then(() => (out[i] = 'resolved'), (e: Error) => (out[i] = `rejected: ${e.message}`)));
  await new Promise((r) => setImmediate(r));
  return out;
}

test('the readers of one event-loop turn share one ReadIndex, sent after the turn', async () => {
  const { b, sent, turn } = harness();
  const burst = Array.from({ length: 16 }, () => b.wait());
  assert.deepEqual(sent, [], 'nothing is sent from inside the turn (the first reader must not go alone)');
  turn();
  assert.deepEqual(sent, [1n]);
  assert.equal(b.sent, 1);
  // Readers of a later turn, while the request is in flight: they wait for the next one.
  const later = [b.wait(), b.wait()];
  turn();
  assert.deepEqual(sent, [1n], 'one request in flight at a time');
  assert.equal(b.answered([{ ctx: 9n, index: 3 }]), undefined, 'another ctx answers nothing');
  const hit = b.answered([{ ctx: 1n, index: 42 }]);
  assert.ok(hit !== undefined);
  assert.equal(hit.index, 42);
  assert.deepEqual(sent, [1n, 2n], 'the next request leaves as soon as the first is answered');
  assert.deepEqual(await states(burst), Array(16).fill('waiting'), 'released by the caller once applied, not before');
  hit.release();
  assert.deepEqual(await states(burst), Array(16).fill('resolved'));
  assert.deepEqual(await states(later), ['waiting', 'waiting']);
  b.answered([{ ctx: 2n, index: 43 }])!.release();
  assert.deepEqual(await states(later), ['resolved', 'resolved']);
  assert.equal(b.answered([{ ctx: 2n, index: 43 }]), undefined, 'nothing in flight');
  turn();
  assert.deepEqual(sent, [1n, 2n], 'no empty request');
});

test('a lost ReadIndex is asked again under a new ctx; one unanswered past the timeout fails its readers', async () => {
  const { b, sent, turn, advance } = harness();
  const first = [b.wait(), b.wait()];
  turn();
  advance(400);
  b.sweep();
  assert.deepEqual(sent, [1n], 'not lost yet');
  advance(200);
  b.sweep();
  assert.deepEqual(sent, [1n, 2n], 'asked again');
  assert.equal(b.answered([{ ctx: 1n, index: 5 }]), undefined, 'the old ctx no longer answers');
  const waiting = b.wait();
  for (let i = 0; i < 10; i++) {
    advance(500);
    b.sweep();
  }
  assert.deepEqual(await states(first), ['rejected: timeout', 'rejected: timeout']);
  // Asked again whenever more than 500 ms passed since the last ask (at 600, 1600, 2600, 3600,
  // 4600 ms), timed out at 5100 ms, and then the waiting reader's own request.
  assert.deepEqual(sent, [1n, 2n, 3n, 4n, 5n, 6n, 7n]);
  b.answered([{ ctx: sent.at(-1)!, index: 7 }])!.release();
  assert.deepEqual(await states([waiting]), ['resolved']);
});

test('close() fails the waiting and in-flight readers and every later one', async () => {
  const { b, sent, turn } = harness();
  const inFlight = b.wait();
  turn();
  const queued = b.wait();
  b.close();
  assert.deepEqual(await states([inFlight, queued, b.wait()]), ['rejected: stopped', 'rejected: stopped', 'rejected: stopped']);
  turn();
  assert.deepEqual(sent, [1n]);
});
