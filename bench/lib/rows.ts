// One measured row of an HTTP benchmark (`gateway`, `v2`): run the HTTP generator against a
// server for one workload and read the CPU of the server, of the bench and of everything else over
// exactly the measured window; optionally CPU-profile our server over that window too.
import type { Server } from '../../test/helpers/procs.js';
import { runHttpGenerator, type HttpWorkload } from './httpload.js';
import { runGenerator, type GeneratorResult, type KvWorkload } from './kvload.js';
import { summarize, type LatencySummary } from './latency.js';
import { cpuSeconds, systemBusySeconds } from './procstat.js';
import { saveProfile, type InspectorProfiler } from './profiler.js';

export interface Row {
  /** the server's label in the report (not necessarily Server.name: etcd runs in several modes) */
  server: string;
  workload: string;
  opsPerSec: number;
  lat: LatencySummary;
  errors: number;
  firstError?: string;
  /** CPU cores used over the measured window */
  serverCpu: number;
  /** the server's first thread (ours: the JS main thread) */
  serverMainCpu: number;
  benchCpu: number;
  /** CPU cores used by everything else on the machine (other processes: the box may be shared) */
  otherCpu: number;
  genElu: number[];
  /** ops/s of every repetition when BENCH_REPEAT > 1 (the row itself is the median one) */
  runs?: number[];
}

export interface RowSettings {
  seconds: number;
  warmupSeconds: number;
  inflight: number;
  genThreads: number;
}

export const f0 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : 'n/a');
export const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
/** milliseconds with 3 significant-ish digits */
export const ms = (n: number): string => (!Number.isFinite(n) ? 'n/a' : n < 10 ? n.toFixed(2) : n.toFixed(1));
export const usPerOp = (r: Row): number => (r.serverCpu * 1e6) / r.opsPerSec;

/** CPU cores used over a measured window: the server's, this bench process's, everything else's. */
export interface WindowCpu {
  serverCpu: number;
  /** The server's first thread alone (for ours the JS main thread, which is what saturates first). */
  serverMainCpu: number;
  benchCpu: number;
  otherCpu: number;
}

/**
 * Starts measuring a window (and CPU-profiling the server over it, if asked); `close` ends both and
 * returns the CPU figures. One place for the accounting every generator's rows use.
 */
export async function openWindow(pid: number, prof?: { profiler: InspectorProfiler; file: string; title: string }): Promise<{ close(): Promise<WindowCpu> }> {
  const cpu0 = process.cpuUsage();
  const srv0 = cpuSeconds(pid);
  const main0 = cpuSeconds(pid, pid);
  const sys0 = systemBusySeconds();
  const wall0 = process.hrtime.bigint();
  await prof?.profiler.start();
  return {
    async close() {
      const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
      const c = process.cpuUsage(cpu0);
      const benchCpu = (c.user + c.system) / 1e6 / wall;
      const serverCpu = (cpuSeconds(pid) - srv0) / wall;
      const serverMainCpu = (cpuSeconds(pid, pid) - main0) / wall;
      const otherCpu = Math.max(0, (systemBusySeconds() - sys0) / wall - serverCpu - benchCpu);
      if (prof !== undefined) saveProfile(prof.file, await prof.profiler.stop(), prof.title);
      return { serverCpu, serverMainCpu, benchCpu, otherCpu };
    },
  };
}

/** Extra work at the edges of the measured window (after the CPU window opens, before it closes). */
export interface ExtraHooks {
  onStart?: () => void;
  onEnd?: () => void;
}

type Run = (hooks: { onWindowStart: () => Promise<void>; onWindowEnd: () => Promise<void> }) => Promise<GeneratorResult>;

/** Runs one generator with the CPU window (and profile) over its measured window: the row. */
async function measureWith(
  label: string, srv: Server, name: string, run: Run, prof?: { profiler: InspectorProfiler; file: string }, extra?: ExtraHooks,
): Promise<Row> {
  let window: { close(): Promise<WindowCpu> } | undefined;
  let cpu: WindowCpu = { serverCpu: NaN, serverMainCpu: NaN, benchCpu: NaN, otherCpu: NaN };
  const r = await run({
    onWindowStart: async () => {
      extra?.onStart?.();
      window = await openWindow(srv.pid, prof && { ...prof, title: `${label}, ${name}: CPU profile of the measured window` });
    },
    onWindowEnd: async () => {
      if (window !== undefined) cpu = await window.close();
      extra?.onEnd?.();
    },
  });
  const row: Row = {
    server: label, workload: name, opsPerSec: r.ops / r.seconds, lat: summarize(r.latencies), errors: r.errors,
    ...cpu, genElu: r.elu,
  };
  if (r.firstError !== undefined) row.firstError = r.firstError;
  return row;
}

export function measureHttp(
  label: string,
  srv: Server,
  w: HttpWorkload,
  s: RowSettings,
  prof?: { profiler: InspectorProfiler; file: string },
): Promise<Row> {
  return measureWith(label, srv, w.name, (hooks) => runHttpGenerator({
    url: srv.clientUrl, workload: w, inflight: s.inflight, threads: s.genThreads,
    warmupMs: s.warmupSeconds * 1000, measureMs: s.seconds * 1000, ...hooks,
  }), prof);
}

/** The gRPC generator's row (`clients` channels); `extra` reads more counters over the same window. */
export function measureGrpc(
  label: string,
  srv: Server,
  w: KvWorkload,
  s: RowSettings & { clients: number },
  prof?: { profiler: InspectorProfiler; file: string },
  extra?: ExtraHooks,
): Promise<Row> {
  return measureWith(label, srv, w.name, (hooks) => runGenerator({
    endpoint: srv.endpoint, workload: w, inflight: s.inflight, clients: s.clients, threads: s.genThreads,
    warmupMs: s.warmupSeconds * 1000, measureMs: s.seconds * 1000, ...hooks,
  }), prof, extra);
}

/** One line per measured row, with warnings when the machine or the generator disturbed it. */
export function printRow(row: Row, tag: string, width = 12): void {
  const { lat } = row;
  process.stdout.write(
    `${(row.workload + tag).padEnd(width)} ${f0(row.opsPerSec).padStart(7)} ops/s  p50 ${ms(lat.p50)} ms  p99 ${ms(lat.p99)} ms  max ${ms(lat.max)} ms  ` +
      `| server CPU ${f2(row.serverCpu)} cores (${f0(usPerOp(row))} µs/op; first thread ${f2(row.serverMainCpu)}), generator ${f2(row.benchCpu)} cores ` +
      `(event loop ${row.genElu.map(f2).join('/')}), others ${f2(row.otherCpu)} cores` +
      (row.errors > 0 ? `  | ${row.errors} errors, first: ${row.firstError}` : '') + '\n',
  );
  if (row.otherCpu > 0.2) process.stdout.write(`  ! other processes used ${f2(row.otherCpu)} cores during this run: the numbers are disturbed\n`);
  if (row.genElu.some((e) => e > 0.9)) process.stdout.write(`  ! generator event loop above 90% busy: this run may be generator-bound\n`);
}

/** The median repetition by throughput (its own latencies and CPU figures go with it). */
export function medianRow<R extends Row>(runs: R[]): R {
  const sorted = [...runs].sort((x, y) => x.opsPerSec - y.opsPerSec);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  if (runs.length > 1) median.runs = runs.map((r) => r.opsPerSec);
  return median;
}

/** The per-row detail table of the HTTP benches: where each row's CPU went, errors, repetitions. */
export function rowDetailsTable(rows: readonly Row[]): string[] {
  return [
    '| server | workload | server CPU (cores) | generator CPU (cores) | generator event loop busy | other processes CPU | errors | ops/s of each repetition |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) =>
      `| ${r.server} | ${r.workload} | ${f2(r.serverCpu)} | ${f2(r.benchCpu)} | ${r.genElu.map(f2).join(' / ')} | ${f2(r.otherCpu)} | ${r.errors} | ${(r.runs ?? [r.opsPerSec]).map(f0).join(', ')} |`),
  ];
}
