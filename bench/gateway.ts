// `npm run bench -- gateway`: KV load through the v3 HTTP/JSON gateway (POST /v3/kv/put and
// /v3/kv/range, JSON bodies with base64 keys and values) against real etcd 3.4's gateway and ours,
// one server at a time, plus the memory cost of 1 MiB puts. See bench/README.md.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { ETCD_BIN, PROJECT_ROOT, startOurServer, startRealEtcd, type Server } from '../test/helpers/procs.js';
import { formatBigPut, measureBigPuts, type BigPutResult } from './lib/bigput.js';
import { preload, type KvWorkload } from './lib/kvload.js';
import { currentRss, mib, peakRss } from './lib/procstat.js';
import { f0, f2, measureHttp, medianRow, ms, printRow, rowDetailsTable, usPerOp, type Row } from './lib/rows.js';
import { envList, envNum } from './lib/env.js';
import { startOursWithInspector, type InspectorProfiler } from './lib/profiler.js';
import { join } from 'node:path';

type ServerName = 'etcd' | 'ours';

const KEYS = 10_000;
const VALUE_SIZE = 256;

const WORKLOADS: KvWorkload[] = [
  { name: 'put', op: 'put', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 0, serializable: false },
  { name: 'range1', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 1, serializable: false },
  { name: 'range100', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 100, serializable: false },
];

const DESCRIPTION: Record<string, string> = {
  put: `POST /v3/kv/put, ${VALUE_SIZE} B value, random key of ${KEYS / 1000}k`,
  range1: `POST /v3/kv/range, 1 key (linearizable)`,
  range100: `POST /v3/kv/range, 100 keys of ${KEYS / 1000}k (linearizable)`,
};

interface Settings {
  /** BENCH_PROFILE=1: a CPU profile of ours per row. */
  profile: boolean;
  seconds: number;
  warmupSeconds: number;
  inflight: number;
  genThreads: number;
  servers: ServerName[];
  workloads: KvWorkload[];
  repeat: number;
  memory: boolean;
  memSequential: number;
  memConcurrency: number;
  /** Fresh servers measured, one after the other, per server kind (single runs vary a lot with GC timing). */
  memRepeat: number;
  /** BENCH_MEMORY=only: the memory part alone. */
  memoryOnly: boolean;
}

function settings(): Settings {
  const names = WORKLOADS.map((w) => w.name);
  return {
    seconds: envNum('BENCH_SECONDS', 10),
    warmupSeconds: envNum('BENCH_WARMUP_SECONDS', 1),
    inflight: Math.max(1, envNum('BENCH_INFLIGHT', 64)),
    genThreads: envNum('BENCH_GEN_THREADS', 2),
    servers: envList('BENCH_SERVERS', ['etcd', 'ours']) as ServerName[],
    workloads: envList('BENCH_WORKLOADS', names).map((n) => WORKLOADS.find((w) => w.name === n)!),
    repeat: Math.max(1, Math.floor(envNum('BENCH_REPEAT', 1))),
    memory: process.env.BENCH_MEMORY !== '0',
    memSequential: Math.max(1, envNum('BENCH_MEM_SEQUENTIAL', 8)),
    memConcurrency: Math.max(1, envNum('BENCH_MEM_CONCURRENCY', 8)),
    memRepeat: Math.max(1, Math.floor(envNum('BENCH_MEM_REPEAT', 3))),
    memoryOnly: process.env.BENCH_MEMORY === 'only',
    profile: process.env.BENCH_PROFILE === '1',
  };
}

interface ServerStats {
  server: ServerName;
  peakRss: number | undefined;
  endRss: ReturnType<typeof currentRss>;
}

const mib1 = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

function startServer(name: ServerName): Promise<Server> {
  return name === 'etcd' ? startRealEtcd({ enableV2: false }) : startOurServer();
}

async function benchThroughput(name: ServerName, s: Settings): Promise<{ rows: Row[]; stats: ServerStats }> {
  const { srv, profiler }: { srv: Server; profiler?: InspectorProfiler } =
    name === 'ours' && s.profile ? await startOursWithInspector() : { srv: await startServer(name) };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  try {
    process.stdout.write(`\n== ${name} (pid ${srv.pid}, ${srv.clientUrl})\n`);
    const t = process.hrtime.bigint();
    await preload(srv.endpoint, KEYS, VALUE_SIZE, s.inflight);
    process.stdout.write(`preloaded ${KEYS} keys of ${VALUE_SIZE} B (over gRPC) in ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} s\n`);
    const rows: Row[] = [];
    for (const w of s.workloads) {
      const runs: Row[] = [];
      for (let rep = 0; rep < s.repeat; rep++) {
        // Only the first repetition is profiled (the profile file name has no repetition number).
        const file = rep === 0 && profiler !== undefined ? join(PROJECT_ROOT, 'bench', 'profiles', `${name}-gateway-${w.name}-${stamp}.cpuprofile`) : undefined;
        const row = await measureHttp(name, srv, w, s, file === undefined ? undefined : { profiler: profiler!, file });
        runs.push(row);
        printRow(row, s.repeat > 1 ? ` #${rep + 1}` : '');
        if (file !== undefined) process.stdout.write(`  profile: ${file} (summary: .md next to it; this row includes the profiler's overhead)\n`);
      }
      rows.push(medianRow(runs));
    }
    return { rows, stats: { server: name, peakRss: peakRss(srv.pid), endRss: currentRss(srv.pid) } };
  } finally {
    profiler?.close();
    await srv.stop();
  }
}

/** On a fresh server of its own (no preload, no earlier load): the heap starts small. */
async function benchMemory(name: ServerName, s: Settings): Promise<BigPutResult> {
  const srv = await startServer(name);
  try {
    const r = await measureBigPuts({ url: srv.clientUrl, pid: srv.pid, sequential: s.memSequential, concurrency: s.memConcurrency });
    process.stdout.write(formatBigPut(`${name} (pid ${srv.pid}), 1 MiB puts`, r) + '\n');
    return r;
  } finally {
    await srv.stop();
  }
}

function etcdVersion(): string {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

/** The run with the median concurrent amplification. */
function medianMem(runs: readonly BigPutResult[]): BigPutResult {
  const sorted = [...runs].sort((a, b) => a.concurrent.amplification - b.concurrent.amplification);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function report(s: Settings, rows: Row[], stats: ServerStats[], memRuns: Map<ServerName, BigPutResult[]>): string {
  const mem = new Map([...memRuns].map(([name, runs]) => [name, medianMem(runs)] as const));
  const get = (srv: ServerName, w: string): Row | undefined => rows.find((r) => r.server === srv && r.workload === w);
  const out: string[] = [];
  out.push(
    `v3 JSON gateway over HTTP/1.1, ${s.inflight} keep-alive connections with one request each (undici, pipelining 1), ` +
      `generator in ${s.genThreads === 0 ? 'the main thread' : `${s.genThreads} worker thread(s)`}, ${s.warmupSeconds} s warmup + ${s.seconds} s measured per row` +
      `${s.repeat > 1 ? ` (median of ${s.repeat} runs by ops/s)` : ''}; ${cpus().length}× ${cpus()[0]?.model.trim() ?? '?'}; etcd ${etcdVersion()}, node ${process.version}`,
  );
  if (rows.length > 0) {
    out.push('');
    out.push('| workload | etcd ops/s | ours ops/s | ratio | etcd p50/p99 ms | ours p50/p99 ms | p50/p99 ratio |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const w of s.workloads) {
      const e = get('etcd', w.name);
      const o = get('ours', w.name);
      const pair = (r: Row | undefined): string => (r === undefined ? '–' : `${ms(r.lat.p50)} / ${ms(r.lat.p99)}`);
      const ratio = e !== undefined && o !== undefined ? f2(o.opsPerSec / e.opsPerSec) : '–';
      const latRatio = e !== undefined && o !== undefined ? `${f2(o.lat.p50 / e.lat.p50)} / ${f2(o.lat.p99 / e.lat.p99)}` : '–';
      out.push(`| ${DESCRIPTION[w.name] ?? w.name} | ${e === undefined ? '–' : f0(e.opsPerSec)} | ${o === undefined ? '–' : f0(o.opsPerSec)} | ${ratio} | ${pair(e)} | ${pair(o)} | ${latRatio} |`);
    }
    out.push('');
    out.push('| server | peak RSS (VmHWM) | RSS at the end: anon + file | server CPU µs/op: ' + s.workloads.map((w) => w.name).join(' / ') + ' |');
    out.push('| --- | ---: | ---: | ---: |');
    for (const st of stats) {
      const cpu = s.workloads.map((w) => {
        const r = get(st.server, w.name);
        return r === undefined ? '–' : f0(usPerOp(r));
      });
      out.push(`| ${st.server} | ${mib(st.peakRss)} | ${mib(st.endRss.anon)} + ${mib(st.endRss.file)} | ${cpu.join(' / ')} |`);
    }
    out.push('');
    out.push(...rowDetailsTable(rows));
  }
  if (mem.size > 0) {
    const any = [...mem.values()][0]!;
    out.push('');
    out.push(
      `1 MiB puts (${(any.bodyBytes / 1e6).toFixed(2)} MB JSON body each) on a fresh server: growth = VmHWM after the phase − VmRSS before it` +
        `${any.hwmReset ? ' (VmHWM reset before each phase)' : ''}; amplification = growth / (bodies in flight × body bytes); anon = polled RssAnon peak growth. ` +
        `${s.memRepeat} fresh server(s) each: the row is the run with the median concurrent amplification, the last column every run's.`,
    );
    out.push('');
    out.push('| server | idle RSS (anon) | sequential: peak growth after N puts, per put body | concurrent: in flight, peak growth, amplification (anon) | concurrent peak over idle RSS, per body in flight | ratio ours/etcd (concurrent amplification) | concurrent amplification of each run |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
    const etcdAmp = mem.get('etcd')?.concurrent.amplification;
    for (const [name, r] of mem) {
      const ratio = name === 'ours' && etcdAmp !== undefined ? f2(r.concurrent.amplification / etcdAmp) : '–';
      const seq = r.sequential;
      const overIdle = r.concurrent.after.hwm - r.idle.rss;
      out.push(
        `| ${name} | ${mib1(r.idle.rss)} (${mib1(r.idle.anon)}) | ${mib1(seq.peakGrowth)} after ${seq.requests}, ${f2(seq.peakGrowth / (seq.requests * r.bodyBytes))}x | ` +
          `${r.concurrent.concurrency}, ${mib1(r.concurrent.peakGrowth)}, **${f2(r.concurrent.amplification)}x** (${f2(r.concurrent.anonAmplification)}x) | ` +
          `${mib1(overIdle)}, ${f2(overIdle / (r.concurrent.concurrency * r.bodyBytes))}x | ${ratio} | ` +
          `${(memRuns.get(name) ?? []).map((x) => x.concurrent.amplification).sort((a, b) => a - b).map(f2).join(', ')} |`,
      );
    }
  }
  return out.join('\n');
}

export async function main(_args: string[]): Promise<number> {
  const s = settings();
  process.stdout.write(
    `settings: ${s.warmupSeconds}+${s.seconds} s per workload, ${s.inflight} connections/requests in flight, ` +
      `generator ${s.genThreads === 0 ? 'in the main thread' : `in ${s.genThreads} worker thread(s)`}` +
      `${s.memory ? `, memory: ${s.memSequential} sequential + ${s.memConcurrency}×2 concurrent 1 MiB puts on ${s.memRepeat} fresh server(s)` : ''}\n`,
  );
  const rows: Row[] = [];
  const stats: ServerStats[] = [];
  const mem = new Map<ServerName, BigPutResult[]>();
  let failed = false;
  for (const name of s.servers) {
    if (s.workloads.length > 0 && !s.memoryOnly) {
      const r = await benchThroughput(name, s);
      rows.push(...r.rows);
      stats.push(r.stats);
      if (r.rows.some((x) => x.errors > 0)) failed = true;
    }
    if (s.memory) {
      const runs: BigPutResult[] = [];
      for (let i = 0; i < s.memRepeat; i++) runs.push(await benchMemory(name, s));
      mem.set(name, runs);
    }
  }
  process.stdout.write('\n' + report(s, rows, stats, mem) + '\n');
  return failed ? 1 : 0;
}
