// Crash safety: SIGKILL our server at random moments in the middle of a concurrent write load,
// restart it on the same data dir each time, and check that every acknowledged write survived
// (with its revision and its history), txns stayed atomic, revisions stayed consistent, and that
// a clean restart changes neither HashKV nor the keyspace. The loop and its checks: loop.ts
// (`npm run bench -- crashloop` runs the same with 50 kills).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCrashLoop } from './loop.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 8);

test(`kill -9 at random moments under a concurrent write load loses no acknowledged write (${KILLS} kills)`, { timeout: 240_000 }, async (t) => {
  // Snapshots (and WAL segment releases) every 1000 entries: kills land in those too.
  const r = await runCrashLoop({ kills: KILLS, writers: 32, minLoadMs: 300, maxLoadMs: 2000, cleanRestartEvery: 3, extraArgs: ['--snapshot-count', '1000'], log: (l) => t.diagnostic(l) });
  t.diagnostic(`${r.iterations} kills, ${r.acknowledged} acknowledged writes, ${r.lost} lost, highest revision ${r.revision}, ${r.seconds.toFixed(1)} s`);
  assert.deepEqual(r.problems.slice(0, 20), []);
  assert.equal(r.lost, 0);
  assert.equal(r.iterations, KILLS);
  assert.ok(r.acknowledged > KILLS * 50, `only ${r.acknowledged} writes acknowledged`);
});
