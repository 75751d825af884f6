// The one test body every request-fuzzing suite runs (v2, gateway, gRPC unary): a fixed seed keeps
// CI reproducible; `npm run bench -- fuzz <suite>` runs more cases with a fresh seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResult, startFuzzServer, type FuzzServer, type SuiteResult } from './lib.js';

export const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
export const SEED = Number(process.env.FUZZ_SEED ?? 7);

type Runner = (server: FuzzServer, opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }) => Promise<SuiteResult>;

export function fuzzTest(suite: string, run: Runner): void {
  test(`${suite} fuzz: no 500, no crash, the protocol's own errors, HashKV unchanged by rejected requests`, { timeout: 180_000 }, async (t) => {
    const server = await startFuzzServer();
    try {
      const r = await run(server, { numRuns: RUNS, seed: SEED, mode: 'assert' });
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
}
