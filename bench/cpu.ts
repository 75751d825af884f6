// `npm run bench -- cpu`: the server's own CPU per operation, for comparing two commits on a busy
// machine. Our server runs IN this process (src/server.ts's composition, default flags, a fresh
// temp data dir) on the main thread, the load generators (the `grpc` and `v2` benches' own) in
// worker threads, and the row is the main thread's CPU time (/proc/self/task/PID/stat) over the
// measured window divided by the requests completed in it. The main thread is where every request
// is served (only LMDB's writer thread and libuv's fsyncs run elsewhere), so this is the figure
// that caps throughput; unlike ops/s it barely moves when other processes take the cores, though
// heavy contention still raises it somewhat (smaller write batches, colder caches).
// Rows: the `grpc` bench's put / range1 / range100 and the `v2` bench's put and get1.
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.js';
import { startServer } from '../src/server.js';
import { makeTempDir, removeTempDir } from '../test/helpers/procs.js';
import { WORKLOADS as GRPC_WORKLOADS } from './grpc.js';
import { envList, envNum } from './lib/env.js';
import { runHttpGenerator, makePool } from './lib/httpload.js';
import { preload, runGenerator, type GeneratorResult } from './lib/kvload.js';
import { cpuSeconds } from './lib/procstat.js';
import { preloadV2 } from './lib/v2load.js';
import { PUT_KEYS, ROWS as V2_ROWS, VALUE_SIZE as V2_VALUE_SIZE } from './v2.js';

const ROWS = ['put', 'range1', 'range100', 'v2put', 'v2get'] as const;
type RowName = (typeof ROWS)[number];

export async function main(_args: string[]): Promise<number> {
  const seconds = envNum('BENCH_SECONDS', 10);
  const warmupSeconds = envNum('BENCH_WARMUP_SECONDS', 1);
  const inflight = Math.max(1, envNum('BENCH_INFLIGHT', 64));
  const clients = Math.max(1, envNum('BENCH_CLIENTS', 4));
  // The generator must not share the measured thread.
  const threads = Math.max(1, envNum('BENCH_GEN_THREADS', 2));
  const repeat = Math.max(1, Math.floor(envNum('BENCH_REPEAT', 1)));
  const rows = envList('BENCH_WORKLOADS', ROWS) as RowName[];

  const dir = await makeTempDir('bench-cpu-');
  const r = loadConfig(['--data-dir', dir, '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:2379'], {});
  if (r.kind !== 'run') throw new Error('bench cpu: bad config');
  const server = await startServer(r.config, pino({ level: 'silent' }));
  const port = server.listeners[0]!.port;
  const endpoint = `127.0.0.1:${port}`;
  const url = `http://${endpoint}`;
  process.stdout.write(`settings: ${warmupSeconds}+${seconds} s per row, ${inflight} in flight, generator in ${threads} worker thread(s), our server in this process's main thread\n`);
  try {
    const kv = GRPC_WORKLOADS[0]!;
    await preload(endpoint, kv.keyCount, kv.valueSize);
    const pool = makePool(url, inflight);
    try {
      await preloadV2(pool, PUT_KEYS, V2_VALUE_SIZE, inflight);
    } finally {
      await pool.close();
    }
    for (const row of rows) {
      const usPerOp: number[] = [];
      const opsPerSec: number[] = [];
      for (let i = 0; i < repeat; i++) {
        let cpu0 = 0;
        let cpu = 0;
        const window = {
          threads, warmupMs: warmupSeconds * 1000, measureMs: seconds * 1000, inflight,
          onWindowStart: () => { cpu0 = cpuSeconds(process.pid, process.pid); },
          onWindowEnd: () => { cpu = cpuSeconds(process.pid, process.pid) - cpu0; },
        };
        let res: GeneratorResult;
        if (row === 'v2put') res = await runHttpGenerator({ ...window, url, workload: V2_ROWS.find((w) => w.op === 'put')! });
        else if (row === 'v2get') res = await runHttpGenerator({ ...window, url, workload: V2_ROWS.find((w) => w.op === 'get')! });
        else res = await runGenerator({ ...window, endpoint, clients, workload: GRPC_WORKLOADS.find((w) => w.name === row)! });
        if (res.errors > 0) throw new Error(`bench cpu: ${row}: ${res.errors} errors, first: ${res.firstError}`);
        usPerOp.push((cpu * 1e6) / res.ops);
        opsPerSec.push(res.ops / res.seconds);
      }
      const sorted = [...usPerOp].sort((a, b) => a - b);
      process.stdout.write(`${row.padEnd(9)} main thread ${sorted[Math.floor((sorted.length - 1) / 2)]!.toFixed(1)} µs/op (median; runs: ${usPerOp.map((u) => u.toFixed(1)).join(', ')}), ${opsPerSec.map((o) => o.toFixed(0)).join(', ')} ops/s\n`);
    }
  } finally {
    await server.close();
    await removeTempDir(dir);
  }
  return 0;
}
