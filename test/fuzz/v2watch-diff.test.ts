// The v2 watch scenarios of v2watch.ts against real etcd 3.4 native v2 (--enable-v2) and ours:
// the same writes and polls on both, transcripts (statuses, errors, delivered events, indexes
// made relative to each case's start) must be equal. No hang-ups, no compaction, a TTL only on
// the last write: the cases whose answers do not depend on timing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent } from 'undici';
import { startGateway } from '../gateway/harness.js';
import { hasEtcd, startRealEtcd } from '../helpers/procs.js';
import { SEED } from './suite.js';
import { runV2WatchDiff } from './v2watch.js';

test('v2 watch scenarios: ours answers as etcd 3.4 native v2', { skip: !hasEtcd(), timeout: 120_000 }, async (t) => {
  const runs = Number(process.env.FUZZ_WATCH_DIFF_RUNS ?? 50);
  const etcd = await startRealEtcd();
  const ours = await startGateway([], undefined, { upstream: false });
  const a = { base: ours.url, agent: new Agent({ connections: 64 }) };
  const b = { base: etcd.clientUrl, agent: new Agent({ connections: 64 }) };
  try {
    const r = await runV2WatchDiff(a, b, { numRuns: runs, seed: SEED });
    t.diagnostic(`${r.cases} scenarios, ${r.differences.length} differences, ${r.seconds.toFixed(1)} s`);
    assert.equal(r.cases, runs);
    assert.deepEqual(r.differences, []);
  } finally {
    await a.agent.close();
    await b.agent.close();
    await ours.close();
    await etcd.stop();
  }
});
