// `npm run bench -- <name>`: benchmark dispatcher. Add a benchmark by adding an entry below; each
// module is imported only when chosen, and its main() returns the exit status.
import { readFileSync } from 'node:fs';

interface Bench {
  describe: string;
  main: (args: string[]) => Promise<number>;
}

const BENCHES: Record<string, Bench> = {
  grpc: {
    describe: 'v3 gRPC KV (put, range 1, range 100) against real etcd 3.4 and ours',
    main: async (args) => (await import('./grpc.js')).main(args),
  },
  gateway: {
    describe: 'v3 HTTP/JSON gateway KV (put, range 1, range 100) and 1 MiB put memory, real etcd 3.4 and ours',
    main: async (args) => (await import('./gateway.js')).main(args),
  },
  v2: {
    describe: 'v2 keys API (get1, put, 10k ?wait=true watchers) against etcd 3.4 native v2, etcd 3.4 v2v3 and ours',
    main: async (args) => (await import('./v2.js')).main(args),
  },
  upstream: {
    describe: 'v3 HTTP/JSON put/range: our gateway mode in front of real etcd 3.4 vs etcd\'s own gateway',
    main: async (args) => (await import('./upstream.js')).main(args),
  },
  auth: {
    describe: 'auth off vs on (simple token, JWT, v2 basic auth) for gRPC, gateway and v2 put/get rows, etcd 3.4 and ours: cost per request',
    main: async (args) => (await import('./auth.js')).main(args),
  },
  cluster: {
    describe: '3-member clusters, ours vs real etcd 3.4: put at 64 in flight, linearizable range1 on a follower, new leader after SIGKILL',
    main: async (args) => (await import('./cluster.js')).main(args),
  },
  crashloop: {
    describe: 'SIGKILL ours at random moments under a write load (50 times by default): iterations, acknowledged writes lost',
    main: async (args) => (await import('./crashloop.js')).main(args),
  },
  fuzz: {
    describe: 'property-based fuzzing of v2 inputs and long polls, gateway and gRPC inputs (FUZZ_RUNS per suite, FUZZ_SEED): cases run, failures found',
    main: async (args) => (await import('./fuzz.js')).main(args),
  },
  cpu: {
    describe: 'our server\'s main-thread CPU per op (gRPC put/range1/range100, v2 put), server in-process, load in workers',
    main: async (args) => (await import('./cpu.js')).main(args),
  },
  profile: {
    describe: 'summarise a .cpuprofile file: profile FILE [TOP]',
    main: async (args) => {
      const { formatProfileSummary, summarizeProfile } = await import('./lib/profiler.js');
      const file = args[0];
      if (file === undefined) {
        process.stderr.write('usage: npm run bench -- profile FILE.cpuprofile [TOP]\n');
        return 2;
      }
      process.stdout.write(formatProfileSummary(file, summarizeProfile(JSON.parse(readFileSync(file, 'utf8'))), Number(args[1] ?? 25)) + '\n');
      return 0;
    },
  },
};

function usage(): string {
  const names = Object.entries(BENCHES).map(([n, b]) => `  ${n.padEnd(8)} ${b.describe}`);
  return [
    'usage: npm run bench -- <benchmark> [args]',
    '',
    'benchmarks:',
    ...names,
    '',
    'environment: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (1), BENCH_INFLIGHT (64), BENCH_CLIENTS (4),',
    '  BENCH_GEN_THREADS (2; 0 = main thread), BENCH_PIN (off | on | SERVERCPUS/BENCHCPUS), BENCH_SERVERS (etcd,ours),',
    '  BENCH_WORKLOADS (put,range1,range100), BENCH_REPEAT (1; median run is reported), BENCH_PROFILE (1 = CPU-profile ours)',
    '  v2 only: BENCH_SERVERS (native,v2v3,ours), BENCH_WORKLOADS (get1,put,watch10k), BENCH_WATCHERS (10000), BENCH_WATCH_CONCURRENCY (200),',
    '  BENCH_WATCH_PROBE_SECONDS (3), BENCH_WATCH_TIMEOUT_SECONDS (60)',
    '  auth only: BENCH_AUTH (simple,jwt,basic), BENCH_WORKLOADS (grpc-put,grpc-range1,gw-put,gw-range1,v2-get1,v2-put);',
    '  BENCH_SECONDS defaults to 5 and BENCH_REPEAT (off/on pairs) to 3',
  ].join('\n');
}

const [name, ...rest] = process.argv.slice(2);
const bench = name === undefined ? undefined : BENCHES[name];
if (bench === undefined) {
  process.stderr.write((name === undefined ? '' : `unknown benchmark "${name}"\n\n`) + usage() + '\n');
  process.exit(2);
}
try {
  process.exitCode = await bench.main(rest);
} catch (e) {
  process.stderr.write(`bench ${name}: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
}
