// Property-based fuzzing of the grpc inputs (generators and properties: lib.ts). A fixed seed
// keeps CI reproducible; `npm run bench -- fuzz grpc` runs more cases with a fresh seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResult, runGrpcFuzz, runGrpcStreamFuzz, startFuzzServer } from './lib.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 7);

test('grpc fuzz: no 500, no crash, the protocol\'s own errors, HashKV unchanged by rejected requests', { timeout: 180_000 }, async (t) => {
  const server = await startFuzzServer();
  try {
    const r = await runGrpcFuzz(server, { numRuns: RUNS, seed: SEED, mode: 'assert' });
    t.diagnostic(formatResult(r));
    assert.deepEqual(r.failures, []);
    assert.equal(r.cases, RUNS);
    // The run exercised both sides: refusals (checked against HashKV) and accepted writes.
    assert.ok(r.rejected > RUNS / 4, `only ${r.rejected} rejected cases`);
    assert.ok(r.cases - r.rejected - r.reads > 10, 'almost no accepted write');
    assert.equal(await server.alive(), undefined);
  } finally {
    await server.close();
  }
});

test('grpc stream fuzz (Watch, LeaseKeepAlive): no crash, etcd\'s statuses, HashKV unchanged', { timeout: 120_000 }, async (t) => {
  const runs = Number(process.env.FUZZ_STREAM_RUNS ?? 300);
  const server = await startFuzzServer();
  try {
    const r = await runGrpcStreamFuzz(server, { numRuns: runs, seed: SEED, mode: 'assert' });
    t.diagnostic(formatResult(r));
    assert.deepEqual(r.failures, []);
    assert.equal(r.cases, runs);
    assert.equal(await server.alive(), undefined);
  } finally {
    await server.close();
  }
});
