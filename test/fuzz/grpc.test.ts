// Property-based fuzzing of the gRPC inputs (generators and properties: lib.ts; the unary test:
// suite.ts). Streams get their own test: they answer with statuses, not one reply per request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResult, runGrpcFuzz, runGrpcStreamFuzz, startFuzzServer } from './lib.js';
import { fuzzTest, SEED } from './suite.js';

fuzzTest('grpc', runGrpcFuzz);

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
