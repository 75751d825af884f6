// `npm run bench -- grpc`: the same gRPC KV load against real etcd 3.4 and against our server,
// one server at a time, each on a fresh temp data dir. See bench/README.md.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ETCD_BIN, PROJECT_ROOT, startOurServer, startRealEtcd, type Server } from '../test/helpers/procs.js';
import { f0, f2, measureGrpc, medianRow, ms, printRow, type Row as HttpRow } from './lib/rows.js';
import { preload, type KvWorkload } from './lib/kvload.js';
import { currentRss, mib, peakRss, pin, writeBytes } from './lib/procstat.js';
import { startOursWithInspector, type InspectorProfiler } from './lib/profiler.js';
import { envList, envNum } from './lib/env.js';

type ServerName = 'etcd' | 'ours';

const KEYS = 10_000;
const VALUE_SIZE = 256;

export const WORKLOADS: KvWorkload[] = [
  { name: 'put', op: 'put', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 0, serializable: false },
  { name: 'range1', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 1, serializable: false },
  { name: 'range100', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 100, serializable: false },
];

const DESCRIPTION: Record<string, string> = {
  put: `Put ${VALUE_SIZE} B value, random key of ${KEYS / 1000}k`,
  range1: `Range 1 key (linearizable)`,
  range100: `Range 100 keys of ${KEYS / 1000}k (linearizable)`,
};

interface Settings {
  seconds: number;
  warmupSeconds: number;
  inflight: number;
  clients: number;
  genThreads: number;
  /** null = no pinning; otherwise CPU lists for the server under test and for the bench process */
  pin: { server: string; bench: string } | null;
  servers: ServerName[];
  workloads: KvWorkload[];
  profile: boolean;
  repeat: number;
}

function settings(): Settings {
  const pinEnv = process.env.BENCH_PIN ?? 'off';
  let pinning: Settings['pin'] = null;
  if (pinEnv === 'on' || pinEnv === '1') pinning = { server: '0', bench: '1' };
  else if (/^[0-9,-]+\/[0-9,-]+$/.test(pinEnv)) {
    const [server, bench] = pinEnv.split('/') as [string, string];
    pinning = { server, bench };
  } else if (pinEnv !== 'off' && pinEnv !== '0') throw new Error(`BENCH_PIN=${pinEnv}: want on, off or SERVERCPUS/BENCHCPUS (e.g. 0/1)`);
  if (pinning !== null && cpus().length < 2) pinning = null;
  const names = WORKLOADS.map((w) => w.name);
  return {
    seconds: envNum('BENCH_SECONDS', 10),
    warmupSeconds: envNum('BENCH_WARMUP_SECONDS', 1),
    inflight: Math.max(1, envNum('BENCH_INFLIGHT', 64)),
    clients: Math.max(1, envNum('BENCH_CLIENTS', 4)),
    genThreads: envNum('BENCH_GEN_THREADS', 2),
    pin: pinning,
    servers: envList('BENCH_SERVERS', ['etcd', 'ours']) as ServerName[],
    workloads: envList('BENCH_WORKLOADS', names).map((n) => WORKLOADS.find((w) => w.name === n)!),
    profile: process.env.BENCH_PROFILE === '1',
    repeat: Math.max(1, Math.floor(envNum('BENCH_REPEAT', 1))),
  };
}

interface Row extends HttpRow {
  server: ServerName;
  /** storage bytes the server wrote per op over the measured window (/proc/PID/io) */
  writeBytesPerOp: number;
}

interface ServerStats {
  server: ServerName;
  peakRss: number | undefined;
  endRss: ReturnType<typeof currentRss>;
  dbBytes: number | undefined;
}


async function startServer(name: ServerName, s: Settings): Promise<{ srv: Server; profiler?: InspectorProfiler }> {
  if (name === 'etcd') return { srv: await startRealEtcd({ enableV2: false }) };
  return s.profile ? startOursWithInspector() : { srv: await startOurServer() };
}

function dbSize(dataDir: string): number | undefined {
  try {
    return statSync(join(dataDir, 'member', 'snap', 'db')).size;
  } catch {
    return undefined;
  }
}

async function measure(
  name: ServerName,
  srv: Server,
  w: KvWorkload,
  s: Settings,
  prof: { profiler: InspectorProfiler; file: string } | undefined,
): Promise<Row> {
  let wb0: number | undefined;
  let wb1: number | undefined;
  const row = await measureGrpc(name, srv, w, s, prof, {
    onStart: () => { wb0 = writeBytes(srv.pid); },
    onEnd: () => { wb1 = writeBytes(srv.pid); },
  });
  const ops = row.opsPerSec * s.seconds;
  return { ...row, server: name, writeBytesPerOp: wb0 === undefined || wb1 === undefined || ops === 0 ? NaN : (wb1 - wb0) / ops };
}

async function benchServer(name: ServerName, s: Settings, profileDir: string, stamp: string): Promise<{ rows: Row[]; stats: ServerStats; profiles: string[] }> {
  const { srv, profiler } = await startServer(name, s);
  const rows: Row[] = [];
  const profiles: string[] = [];
  try {
    if (s.pin !== null && !pin(srv.pid, s.pin.server)) process.stderr.write(`warning: could not pin ${name} (pid ${srv.pid}) to CPU ${s.pin.server}\n`);
    process.stdout.write(`\n== ${name} (pid ${srv.pid}, ${srv.endpoint})\n`);
    const t = process.hrtime.bigint();
    await preload(srv.endpoint, KEYS, VALUE_SIZE, s.inflight);
    process.stdout.write(`preloaded ${KEYS} keys of ${VALUE_SIZE} B in ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} s\n`);

    for (const w of s.workloads) {
      const runs: Row[] = [];
      for (let rep = 0; rep < s.repeat; rep++) {
        // Only the first repetition is profiled (the profile file name has no repetition number).
        const profileFile = rep === 0 && profiler !== undefined ? join(profileDir, `ours-${w.name}-${stamp}.cpuprofile`) : undefined;
        const row = await measure(name, srv, w, s, profileFile === undefined ? undefined : { profiler: profiler!, file: profileFile });
        runs.push(row);
        printRow(row, s.repeat > 1 ? ` #${rep + 1}` : '');
        if (profileFile !== undefined) {
          profiles.push(profileFile);
          process.stdout.write(`  profile: ${profileFile} (summary: .md next to it)\n`);
        }
      }
      rows.push(medianRow(runs));
    }
    const stats: ServerStats = { server: name, peakRss: peakRss(srv.pid), endRss: currentRss(srv.pid), dbBytes: dbSize(srv.dataDir) };
    return { rows, stats, profiles };
  } finally {
    profiler?.close();
    await srv.stop();
  }
}

function etcdVersion(): string {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

function report(s: Settings, rows: Row[], stats: ServerStats[]): string {
  const get = (srv: ServerName, w: string): Row | undefined => rows.find((r) => r.server === srv && r.workload === w);
  const out: string[] = [];
  const pinText = s.pin === null ? 'no CPU pinning' : `server pinned to CPU ${s.pin.server}, load generator to CPU ${s.pin.bench}`;
  out.push(
    `gRPC KV, ${s.inflight} requests in flight over ${s.clients} connections, ${s.warmupSeconds} s warmup + ${s.seconds} s measured per row${s.repeat > 1 ? ` (median of ${s.repeat} runs by ops/s)` : ''}; ` +
      `${cpus().length}× ${cpus()[0]?.model.trim() ?? '?'}, ${pinText}; etcd ${etcdVersion()}, node ${process.version}`,
  );
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
  out.push('| server | peak RSS (VmHWM) | RSS at the end: anon + file | db file after the run |');
  out.push('| --- | ---: | ---: | ---: |');
  for (const st of stats) out.push(`| ${st.server} | ${mib(st.peakRss)} | ${mib(st.endRss.anon)} + ${mib(st.endRss.file)} | ${mib(st.dbBytes)} |`);
  out.push('');
  out.push('| server | workload | server CPU (cores) | server CPU µs/op | server disk writes B/op | generator CPU (cores) | generator event loop busy | other processes CPU | errors | ops/s of each repetition |');
  out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    out.push(`| ${r.server} | ${r.workload} | ${f2(r.serverCpu)} | ${f0((r.serverCpu * 1e6) / r.opsPerSec)} | ${f0(r.writeBytesPerOp)} | ${f2(r.benchCpu)} | ${r.genElu.map(f2).join(' / ')} | ${f2(r.otherCpu)} | ${r.errors} | ${(r.runs ?? [r.opsPerSec]).map(f0).join(', ')} |`);
  }
  return out.join('\n');
}

export async function main(_args: string[]): Promise<number> {
  const s = settings();
  if (s.pin !== null && !pin(process.pid, s.pin.bench)) process.stderr.write(`warning: could not pin the bench process to CPU ${s.pin.bench}\n`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileDir = join(PROJECT_ROOT, 'bench', 'profiles');
  process.stdout.write(
    `settings: ${s.warmupSeconds}+${s.seconds} s per workload, ${s.inflight} in flight, ${s.clients} channels, ` +
      `generator ${s.genThreads === 0 ? 'in the main thread' : `in ${s.genThreads} worker thread(s)`}, ` +
      `${s.pin === null ? 'no pinning' : `pinning server->CPU ${s.pin.server}, bench->CPU ${s.pin.bench}`}` +
      `${s.profile ? ', profiling ours (numbers for ours include profiler overhead)' : ''}\n`,
  );
  const rows: Row[] = [];
  const stats: ServerStats[] = [];
  let failed = false;
  for (const name of s.servers) {
    const r = await benchServer(name, s, profileDir, stamp);
    rows.push(...r.rows);
    stats.push(r.stats);
    if (r.rows.some((x) => x.errors > 0)) failed = true;
  }
  process.stdout.write('\n' + report(s, rows, stats) + '\n');
  return failed ? 1 : 0;
}
