// `npm run bench -- upstream`: the v3 JSON gateway in gateway mode. One real etcd 3.4 member; the
// same HTTP load (POST /v3/kv/put, /v3/kv/range, JSON bodies) against etcd's own gateway on its
// client port and against our binary with --endpoints pointing at that member (every request
// then crosses our process and one gRPC hop). Reported side by side with the CPU of each process.
// Then the v2 rows of bench/v2.ts (GET, PUT, 10,000 long polls) against etcd 3.4's v2v3 emulation
// and against ours in front of a fresh etcd member (BENCH_SERVERS picks them; BENCH_WORKLOADS
// filters both parts by row name).
import { startOurServer, startRealEtcd, type Server } from '../test/helpers/procs.js';
import { runHttpGenerator } from './lib/httpload.js';
import { preload, type KvWorkload } from './lib/kvload.js';
import { summarize } from './lib/latency.js';
import { envList, envNum } from './lib/env.js';
import { cpuSeconds } from './lib/procstat.js';
import { runV2, settings as v2Settings, V2_WORKLOADS } from './v2.js';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../test/helpers/procs.js';
import { saveProfile, startOursWithInspector, type CpuProfile, type InspectorProfiler } from './lib/profiler.js';

const KEYS = 10_000;
const VALUE_SIZE = 256;
const WORKLOADS: KvWorkload[] = [
  { name: 'put', op: 'put', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 0, serializable: false },
  { name: 'range1', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 1, serializable: false },
];

interface Row { target: string; workload: string; ops: number; p50: number; p99: number; errors: number; firstError?: string | undefined; etcdCpu: number; oursCpu: number }

const f0 = (n: number): string => n.toFixed(0);
const ms = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(1));

export async function main(_args: string[]): Promise<number> {
  const seconds = envNum('BENCH_SECONDS', 5);
  const warmup = envNum('BENCH_WARMUP_SECONDS', 1);
  const inflight = Math.max(1, envNum('BENCH_INFLIGHT', 64));
  const threads = envNum('BENCH_GEN_THREADS', 2);
  // BENCH_WORKLOADS names rows of both parts (put is a row of each).
  const names = envList('BENCH_WORKLOADS', [...WORKLOADS.map((x) => x.name), ...V2_WORKLOADS]);
  const workloads = WORKLOADS.filter((w) => names.includes(w.name));
  const v3 = workloads.length > 0 ? await benchV3(workloads, { seconds, warmup, inflight, threads }) : 0;
  process.stdout.write('\n== v2 keys API: etcd 3.4 v2v3 emulation vs ours in gateway mode\n');
  const v2 = await runV2(v2Settings(['v2v3', 'upstream'], WORKLOADS.map((x) => x.name)));
  return Math.max(v3, v2);
}

async function benchV3(workloads: KvWorkload[], o: { seconds: number; warmup: number; inflight: number; threads: number }): Promise<number> {
  const { seconds, warmup, inflight, threads } = o;
  const etcd = await startRealEtcd({ enableV2: false });
  let ours: Server | undefined;
  let profiler: InspectorProfiler | undefined;
  const rows: Row[] = [];
  try {
    // BENCH_PROFILE=1: ours is CPU-profiled over each measured window (bench/profiles/).
    const extraArgs = ['--endpoints', etcd.endpoint];
    if (process.env.BENCH_PROFILE === '1') ({ srv: ours, profiler } = await startOursWithInspector(extraArgs));
    else ours = await startOurServer({ extraArgs });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await preload(etcd.endpoint, KEYS, VALUE_SIZE, inflight);
    for (const w of workloads) {
      for (const [target, url] of [['etcd gateway', etcd.clientUrl], ['ours → etcd', ours.clientUrl]] as const) {
        let e0 = 0;
        let o0 = 0;
        let t0 = 0;
        let etcdCpu = NaN;
        let oursCpu = NaN;
        const prof = target === 'etcd gateway' ? undefined : profiler;
        let profile: Promise<CpuProfile> | undefined;
        const r = await runHttpGenerator({
          url, workload: w, inflight, threads, warmupMs: warmup * 1000, measureMs: seconds * 1000,
          onWindowStart: () => { void prof?.start(); e0 = cpuSeconds(etcd.pid); o0 = cpuSeconds(ours!.pid); t0 = Date.now(); },
          onWindowEnd: () => {
            profile = prof?.stop();
            const wall = (Date.now() - t0) / 1000;
            etcdCpu = (cpuSeconds(etcd.pid) - e0) / wall;
            oursCpu = (cpuSeconds(ours!.pid) - o0) / wall;
          },
        });
        if (profile !== undefined) {
          const file = join(PROJECT_ROOT, 'bench', 'profiles', `upstream-v3-${w.name}-${stamp}.cpuprofile`);
          saveProfile(file, await profile, `ours in gateway mode, v3 JSON ${w.name}: CPU profile of the measured window`);
          process.stdout.write(`  profile: ${file}\n`);
        }
        const lat = summarize(r.latencies);
        const row: Row = { target, workload: w.name, ops: r.ops / r.seconds, p50: lat.p50, p99: lat.p99, errors: r.errors, firstError: r.firstError, etcdCpu, oursCpu };
        rows.push(row);
        process.stdout.write(`${w.name.padEnd(8)} ${target.padEnd(13)} ${f0(row.ops).padStart(7)} ops/s  p50 ${ms(row.p50)} ms  p99 ${ms(row.p99)} ms  etcd ${row.etcdCpu.toFixed(2)} cores, ours ${row.oursCpu.toFixed(2)} cores${row.errors > 0 ? `  ${row.errors} errors: ${row.firstError}` : ''}\n`);
      }
    }
  } finally {
    profiler?.close();
    await ours?.stop();
    await etcd.stop();
  }
  const out = ['', `| workload | etcd's gateway ops/s | ours in front of etcd ops/s | ratio | etcd p50/p99 ms | ours p50/p99 ms |`, '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const w of workloads) {
    const e = rows.find((r) => r.workload === w.name && r.target === 'etcd gateway')!;
    const o = rows.find((r) => r.workload === w.name && r.target !== 'etcd gateway')!;
    out.push(`| ${w.name} | ${f0(e.ops)} | ${f0(o.ops)} | ${(o.ops / e.ops).toFixed(2)} | ${ms(e.p50)} / ${ms(e.p99)} | ${ms(o.p50)} / ${ms(o.p99)} |`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return rows.some((r) => r.errors > 0) ? 1 : 0;
}
