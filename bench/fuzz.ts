// `npm run bench -- fuzz [v2|gateway|grpc|grpc-streams ...]`: the fuzz suites of test/fuzz with more cases and
// a fresh random seed (FUZZ_SEED to replay one), counting failures instead of stopping at the first.
// Prints cases run and failures found per protocol, and the first failing cases. Exit 1 on any.
import { formatResult, runGatewayFuzz, runGrpcFuzz, runGrpcStreamFuzz, runV2Fuzz, startFuzzServer, type FuzzServer, type SuiteResult } from '../test/fuzz/lib.js';

type Runner = (s: FuzzServer, o: { numRuns: number; seed: number; mode: 'count' }) => Promise<SuiteResult>;
const SUITES: Record<string, Runner> = { v2: runV2Fuzz, gateway: runGatewayFuzz, grpc: runGrpcFuzz, 'grpc-streams': runGrpcStreamFuzz };

export async function main(args: string[]): Promise<number> {
  const names = args.length > 0 ? args : Object.keys(SUITES);
  const numRuns = Number(process.env.FUZZ_RUNS ?? 5000);
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  process.stdout.write(`fuzz: ${numRuns} cases per suite, seed ${seed} (FUZZ_SEED=${seed} replays it)\n`);
  let failures = 0;
  let cases = 0;
  let crashes = 0;
  for (const name of names) {
    const run = SUITES[name];
    if (run === undefined) {
      process.stderr.write(`unknown suite ${name} (${Object.keys(SUITES).join(', ')})\n`);
      return 2;
    }
    // Each protocol gets a fresh server: a suite's accepted writes (an alarm, a compaction) stay its own.
    const server = await startFuzzServer();
    try {
      const r = await run(server, { numRuns, seed, mode: 'count' });
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
