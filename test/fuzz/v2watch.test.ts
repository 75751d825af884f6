// Property-based fuzzing of the v2 long polls and streams (scenarios, oracle and properties:
// v2watch.ts), and proof that the oracle's checks can fail.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResult, startFuzzServer } from './lib.js';
import { SEED } from './suite.js';
import { checkEvent, EventLog, expectedEvents, runV2WatchFuzz, watchersBack, type V2EventJson, type WatchSpec } from './v2watch.js';

test('v2 watch fuzz: polls and streams get the due events, etcd\'s errors, no 5xx, no leaked watcher, HashKV unchanged', { timeout: 150_000 }, async (t) => {
  const runs = Number(process.env.FUZZ_WATCH_RUNS ?? 160);
  const server = await startFuzzServer();
  try {
    const r = await runV2WatchFuzz(server, { numRuns: runs, seed: SEED, mode: 'assert' });
    t.diagnostic(formatResult(r));
    assert.deepEqual(r.failures, []);
    assert.equal(r.cases, runs);
    // The run exercised fired polls, refusals and a redirect.
    const seen = [...r.buckets.keys()].join(' | ');
    for (const kind of ['200 poll event', '400 errorCode 209', '301']) assert.ok(seen.includes(kind), `no "${kind}" case in ${seen}`);
    // The leak check can fail: a poll still open is reported, and its end clears it.
    const ac = new AbortController();
    const open = await fetch(`${server.url}/v2/keys/leak-check?wait=true`, { signal: ac.signal });
    assert.equal(open.status, 200);
    assert.match((await watchersBack(server)) ?? '', /watchers leaked .*long_polls 1 /);
    ac.abort();
    assert.equal(await watchersBack(server), undefined);
    assert.equal(await server.alive(), undefined);
  } finally {
    await server.close();
  }
});

const set = (key: string, i: number, value = 'v'): V2EventJson => ({ action: 'set', node: { key, value, modifiedIndex: i, createdIndex: i } });
const rmdir = (key: string, i: number): V2EventJson => ({ action: 'delete', node: { key, dir: true, modifiedIndex: i, createdIndex: 1 }, prevNode: { key, dir: true, modifiedIndex: 1, createdIndex: 1 } });

function logOf(...events: V2EventJson[]): EventLog {
  const log = new EventLog();
  for (const e of events) log.add(e.node.modifiedIndex!, e);
  return log;
}

const at = (path: string, from: number, cur: number, more: Partial<WatchSpec> = {}): WatchSpec => ({ path, recursive: false, stream: false, from, cur, ...more });
const indexes = (log: EventLog, w: WatchSpec): number[] => expectedEvents(log, w).map((e) => e.index);

test('the oracle follows etcd 3.4\'s matching rules (spec 9.3)', () => {
  const log = logOf(set('/d/k', 2), set('/d/_h', 3), set('/d/e/k', 4), rmdir('/d', 5), set('/dd', 6));
  // Live (after registration at 1): a recursive watch skips hidden keys below it.
  assert.deepEqual(indexes(log, at('/d', 2, 1, { recursive: true, stream: true })), [2, 4, 5, 5]);
  // History (registered at 6): no hidden filtering; the first hit ends a stream too.
  assert.deepEqual(indexes(log, at('/d', 3, 6, { recursive: true, stream: true })), [3]);
  // A directory delete reaches a live watch only on a node that existed inside it ...
  assert.deepEqual(indexes(log, at('/d/k', 5, 4)), [5]);
  assert.deepEqual(indexes(log, at('/d/never', 5, 4)), []);
  // ... but a history scan matches it by plain string prefix, even /dd and /d/never.
  assert.deepEqual(indexes(log, at('/d/never', 5, 6)), [5]);
  assert.deepEqual(indexes(log, at('/dd', 5, 6)), [5]);
  // A non-recursive watch on a directory ignores its children.
  assert.deepEqual(indexes(log, at('/d', 2, 1)), [5]);
});

test('the checks can fail: a wrong, early or undue event is each reported', () => {
  const log = logOf(set('/a', 2, 'x'), set('/a', 3, 'y'));
  const w = at('/a', 3, 2);
  const [due] = expectedEvents(log, w);
  assert.deepEqual(checkEvent(log, w, set('/a', 3, 'y'), due), []);
  assert.ok(checkEvent(log, w, set('/a', 3, 'other'), due).some((p) => p.includes('differs from the write')));
  assert.ok(checkEvent(log, w, set('/a', 2, 'x'), due).some((p) => p.includes('< 3')));
  assert.ok(checkEvent(log, w, set('/b', 3, 'y'), due).some((p) => p.includes('not under the watched')));
  assert.ok(checkEvent(log, w, set('/a', 3, 'y'), undefined).some((p) => p.includes('not due')));
  assert.ok(checkEvent(log, w, { action: 'delete', node: { key: '/a', modifiedIndex: 3 } }, due).some((p) => p.includes('without its prevNode')));
});
