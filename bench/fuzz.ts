// `npm run bench -- fuzz [v2|v2-watch|gateway|grpc|grpc-streams|v2-watch-diff ...]`: the fuzz suites of
// test/fuzz with more cases and a fresh random seed (FUZZ_SEED to replay one), counting failures
// instead of stopping at the first. Prints cases run and failures found per suite, and the first
// failing cases. Exit 1 on any. v2-watch-diff (not run by default: it starts real etcd 3.4) runs the
// v2 watch scenarios against etcd native v2 and ours and counts the differences.
import { Agent } from 'undici';
import { formatResult, runGatewayFuzz, runGrpcFuzz, runGrpcStreamFuzz, runV2Fuzz, startFuzzServer, type FuzzServer, type SuiteResult } from '../test/fuzz/lib.js';
import { runV2WatchDiff, runV2WatchFuzz } from '../test/fuzz/v2watch.js';
import { startGateway } from '../test/gateway/harness.js';
import { hasEtcd, startRealEtcd } from '../test/helpers/procs.js';

type Runner = (s: FuzzServer, o: { numRuns: number; seed: number; mode: 'count' }) => Promise<SuiteResult>;
const SUITES: Record<string, Runner> = {
  v2: runV2Fuzz, 'v2-watch': runV2WatchFuzz, gateway: runGatewayFuzz, grpc: runGrpcFuzz, 'grpc-streams': runGrpcStreamFuzz,
};
/** Not in the default list: it starts real etcd 3.4 (`npm run bench -- fuzz v2-watch-diff`). */
const DIFF = 'v2-watch-diff';

export async function main(args: string[]): Promise<number> {
  const names = args.length > 0 ? args : Object.keys(SUITES);
  const numRuns = Number(process.env.FUZZ_RUNS ?? 5000);
  // A watch scenario is a few writes and polls that wait (~0.1 s): fewer of them by default.
  const watchRuns = Number(process.env.FUZZ_WATCH_RUNS ?? Math.min(numRuns, 1000));
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  process.stdout.write(`fuzz: ${numRuns} cases per suite (${watchRuns} v2 watch scenarios), seed ${seed} (FUZZ_SEED=${seed} replays it)\n`);
  let failures = 0;
  let cases = 0;
  let crashes = 0;
  for (const name of names) {
    if (name === DIFF) {
      const d = await watchDiff(watchRuns, seed);
      cases += d.cases;
      failures += d.differences;
      continue;
    }
    const run = SUITES[name];
    if (run === undefined) {
      process.stderr.write(`unknown suite ${name} (${[...Object.keys(SUITES), DIFF].join(', ')})\n`);
      return 2;
    }
    // Each protocol gets a fresh server: a suite's accepted writes (an alarm, a compaction) stay its own.
    const server = await startFuzzServer();
    try {
      const r = await run(server, { numRuns: name === 'v2-watch' ? watchRuns : numRuns, seed, mode: 'count' });
      const dead = await server.alive();
      cases += r.cases;
      failures += r.failures.length;
      if (dead !== undefined) crashes++;
      process.stdout.write(formatResult(r) + '\n');
      if (dead !== undefined) process.stdout.write(`  server not alive after the run: ${dead}\n`);
      for (const f of r.failures.slice(0, 10)) process.stdout.write(`  FAIL ${f}\n`);
    } finally {
      await server.close();
    }
  }
  process.stdout.write(`fuzz total: ${cases} cases, ${failures} failing cases, ${crashes} suites after which the server did not answer /health and a write\n`);
  return failures === 0 && crashes === 0 ? 0 : 1;
}

/** The v2 watch scenarios against real etcd 3.4 native v2 and ours: differences counted as failures. */
async function watchDiff(numRuns: number, seed: number): Promise<{ cases: number; differences: number }> {
  if (!hasEtcd()) {
    process.stdout.write(`${DIFF}: skipped, no /usr/bin/etcd\n`);
    return { cases: 0, differences: 0 };
  }
  const etcd = await startRealEtcd();
  const ours = await startGateway([], undefined, { upstream: false });
  const a = { base: ours.url, agent: new Agent({ connections: 64 }) };
  const b = { base: etcd.clientUrl, agent: new Agent({ connections: 64 }) };
  try {
    const r = await runV2WatchDiff(a, b, { numRuns, seed });
    process.stdout.write(`${DIFF}: ${r.cases} scenarios against etcd 3.4 native v2, ${r.differences.length} differences, ${r.seconds.toFixed(1)} s\n`);
    for (const d of r.differences.slice(0, 5)) process.stdout.write(`  DIFF ${d.slice(0, 3000)}\n`);
    return { cases: r.cases, differences: r.differences.length };
  } finally {
    await a.agent.close();
    await b.agent.close();
    await ours.close();
    await etcd.stop();
  }
}
