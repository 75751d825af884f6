// `npm run bench -- v2`: the v2 keys API (GET of one key, PUT of 32-byte form values, 10k
// concurrent ?wait=true long polls) against real etcd 3.4 with its native v2 store, real etcd 3.4
// serving v2 over its v3 store (--experimental-enable-v2v3), and ours; one server at a time, each
// on a fresh temp data dir. `npm run bench -- upstream` runs the same rows with ours in gateway
// mode (`upstream`: --endpoints in front of one etcd 3.4 member). See bench/README.md.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ETCD_BIN, PROJECT_ROOT, startOurServer, startRealEtcd, type Server } from '../test/helpers/procs.js';
import { makePool, runHttpLoad, warmConnections } from './lib/httpload.js';
import { envList, envNum } from './lib/env.js';
import { summarize, type LatencySummary } from './lib/latency.js';
import { cpuSeconds, currentRss, mib, peakRss } from './lib/procstat.js';
import { startOursWithInspector, type InspectorProfiler } from './lib/profiler.js';
import { f0, f2, measureHttp, medianRow, ms, printRow, rowDetailsTable, usPerOp, type Row } from './lib/rows.js';
import { preloadV2, v2Put, type V2Workload } from './lib/v2load.js';
import { closeAll, openLongPolls, waitDone, waitHeaders, type LongPoll } from './lib/v2watch.js';
import { makeWindow } from './lib/workers.js';

export type ServerName = 'native' | 'v2v3' | 'ours' | 'upstream';
const SERVERS: ServerName[] = ['native', 'v2v3', 'ours'];
/** Ours, in either mode: the servers the ratios are computed for. */
const SUBJECTS: ServerName[] = ['ours', 'upstream'];
/** etcd's own v2 servers: what the ratios compare against. */
const BASELINES: ServerName[] = ['native', 'v2v3'];

/** Where etcd's v2v3 mode keeps the v2 tree in its v3 keyspace. */
const V2V3_PREFIX = '/v2v3/';

const SERVER_TEXT: Record<ServerName, string> = {
  native: 'etcd 3.4 `--enable-v2` (native v2 store)',
  v2v3: `etcd 3.4 \`--enable-v2 --experimental-enable-v2v3 ${V2V3_PREFIX}\` (v2 emulated over the v3 store)`,
  ours: 'our server (dist/src/main.js)',
  upstream: 'our server with `--endpoints` in front of one etcd 3.4 member (v2 not enabled on that member); server CPU and RSS are ours only',
};

export const PUT_KEYS = 1000;
export const VALUE_SIZE = 32;

export const ROWS: V2Workload[] = [
  { name: 'get1', api: 'v2', op: 'get', keyCount: PUT_KEYS, valueSize: VALUE_SIZE },
  { name: 'put', api: 'v2', op: 'put', keyCount: PUT_KEYS, valueSize: VALUE_SIZE },
];
const WATCH = 'watch10k';

const DESCRIPTION: Record<string, string> = {
  get1: 'GET /v2/keys/bench/get1 (one key)',
  put: `PUT /v2/keys/bench/put/kNNNN value=<${VALUE_SIZE} B> (random key of ${PUT_KEYS})`,
};

/** The watchers' key, and the key their GET-latency probe reads (the `get1` key). */
const WATCH_KEY = '/bench/watch/k';
const GET_PROBE: V2Workload = ROWS[0]!;

export interface Settings {
  seconds: number;
  warmupSeconds: number;
  inflight: number;
  genThreads: number;
  servers: ServerName[];
  rows: V2Workload[];
  watch: boolean;
  repeat: number;
  profile: boolean;
  watchers: number;
  watchConcurrency: number;
  probeSeconds: number;
  watchTimeoutSeconds: number;
}

/** The v2 row names BENCH_WORKLOADS may pick. */
export const V2_WORKLOADS: readonly string[] = [...ROWS.map((w) => w.name), WATCH];

/** `otherWorkloads`: names another bench shares BENCH_WORKLOADS with (accepted here, run there). */
export function settings(defaultServers: ServerName[] = SERVERS, otherWorkloads: readonly string[] = []): Settings {
  const names = envList('BENCH_WORKLOADS', [...V2_WORKLOADS, ...otherWorkloads]).filter((n) => V2_WORKLOADS.includes(n));
  return {
    seconds: envNum('BENCH_SECONDS', 10),
    warmupSeconds: envNum('BENCH_WARMUP_SECONDS', 1),
    inflight: Math.max(1, envNum('BENCH_INFLIGHT', 64)),
    genThreads: envNum('BENCH_GEN_THREADS', 2),
    servers: envList('BENCH_SERVERS', defaultServers) as ServerName[],
    rows: ROWS.filter((w) => names.includes(w.name)),
    watch: names.includes(WATCH),
    repeat: Math.max(1, Math.floor(envNum('BENCH_REPEAT', 1))),
    profile: process.env.BENCH_PROFILE === '1',
    watchers: Math.max(1, Math.floor(envNum('BENCH_WATCHERS', 10_000))),
    watchConcurrency: Math.max(1, Math.floor(envNum('BENCH_WATCH_CONCURRENCY', 200))),
    probeSeconds: Math.max(0.5, envNum('BENCH_WATCH_PROBE_SECONDS', 3)),
    watchTimeoutSeconds: Math.max(1, envNum('BENCH_WATCH_TIMEOUT_SECONDS', 60)),
  };
}

async function startServer(name: ServerName, profile: boolean): Promise<{ srv: Server; profiler?: InspectorProfiler }> {
  switch (name) {
    case 'native':
      return { srv: await startRealEtcd({ enableV2: true }) };
    case 'v2v3':
      return { srv: await startRealEtcd({ enableV2: true, extraArgs: ['--experimental-enable-v2v3', V2V3_PREFIX], healthPath: '/v2/keys/' }) };
    case 'ours':
      return profile ? startOursWithInspector() : { srv: await startOurServer() };
    case 'upstream':
      return startUpstream(profile);
  }
}

/** Ours in gateway mode over a fresh etcd member; stopping it stops both. */
async function startUpstream(profile: boolean): Promise<{ srv: Server; profiler?: InspectorProfiler }> {
  const etcd = await startRealEtcd({ enableV2: false });
  try {
    const extraArgs = ['--endpoints', etcd.endpoint];
    const { srv: ours, profiler } = profile ? await startOursWithInspector(extraArgs) : { srv: await startOurServer({ extraArgs }), profiler: undefined };
    const srv = { ...ours, stop: async () => { await ours.stop(); await etcd.stop(); } };
    return profiler === undefined ? { srv } : { srv, profiler };
  } catch (e) {
    await etcd.stop();
    throw e;
  }
}

/** Preloads the get1 key and the put keys over `connections` keep-alive connections. */
async function preload(srv: Server, connections: number): Promise<void> {
  const pool = makePool(srv.clientUrl, connections);
  try {
    await preloadV2(pool, PUT_KEYS, VALUE_SIZE, connections);
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------------------------------------
// get1 / put rows

interface ServerStats {
  server: ServerName;
  peakRss: number | undefined;
  endRss: ReturnType<typeof currentRss>;
}

async function benchThroughput(name: ServerName, s: Settings, stamp: string): Promise<{ rows: Row[]; stats: ServerStats }> {
  const { srv, profiler } = await startServer(name, s.profile);
  try {
    process.stdout.write(`\n== ${name}: ${SERVER_TEXT[name]} (pid ${srv.pid}, ${srv.clientUrl})\n`);
    const t = process.hrtime.bigint();
    await preload(srv, s.inflight);
    process.stdout.write(`preloaded ${PUT_KEYS + 1} keys of ${VALUE_SIZE} B in ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} s\n`);
    const rows: Row[] = [];
    for (const w of s.rows) {
      const runs: Row[] = [];
      for (let rep = 0; rep < s.repeat; rep++) {
        // Only the first repetition is profiled (the profile file name has no repetition number).
        const file = rep === 0 && profiler !== undefined ? join(PROJECT_ROOT, 'bench', 'profiles', `${name}-v2-${w.name}-${stamp}.cpuprofile`) : undefined;
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

// ---------------------------------------------------------------------------------------------
// watch10k

interface Probe {
  lat: LatencySummary;
  errors: number;
  firstError?: string;
}

interface WatchResult {
  server: ServerName;
  requested: number;
  /** polls whose response headers arrived (= registered, see bench/lib/v2watch.ts) */
  registered: number;
  /** polls still open when the RSS was read (the watchers the server holds, registered or not) */
  held: number;
  /** polls that failed before the write (connection errors, or ended early) */
  failedBefore: number;
  firstError?: string;
  openSeconds: number;
  rssBefore: ReturnType<typeof currentRss>;
  rssAfter: ReturnType<typeof currentRss>;
  getIdle: Probe;
  getWaiting: Probe;
  writeMs: number;
  delivered: number;
  /** delivered with status 200 and a "set" event of the value written */
  deliveredOk: number;
  /** time from the write's start to each long poll's response end */
  delivery: LatencySummary;
  /** server CPU seconds from the write's start to the last delivery */
  deliveryCpu: number;
  /** the bench process's CPU seconds over the same time (receiving the responses) */
  benchDeliveryCpu: number;
  /** from the write's start to the last delivery */
  deliveryWallMs: number;
}

/** Sequential GETs of the get1 key on one keep-alive connection: latency, not throughput. */
async function probeGet(srv: Server, seconds: number): Promise<Probe> {
  const pool = makePool(srv.clientUrl, 1);
  try {
    await warmConnections(pool, 1, GET_PROBE);
    const r = await runHttpLoad({ url: srv.clientUrl, workload: GET_PROBE, inflight: 1, seed: 1 }, pool, makeWindow(200, seconds * 1000));
    const p: Probe = { lat: summarize([r.latencies]), errors: r.errors };
    if (r.firstError !== undefined) p.firstError = r.firstError;
    return p;
  } finally {
    await pool.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const since = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e9;

async function benchWatchers(name: ServerName, s: Settings): Promise<WatchResult> {
  const { srv } = await startServer(name, false);
  let polls: LongPoll[] = [];
  try {
    const n = s.watchers;
    process.stdout.write(`\n== ${name} ${WATCH}: ${n} long polls on ${WATCH_KEY} (fresh server, pid ${srv.pid}, ${srv.clientUrl})\n`);
    await preload(srv, 8);
    const getIdle = await probeGet(srv, s.probeSeconds);
    process.stdout.write(`GET latency, no watchers: p50 ${ms(getIdle.lat.p50)} ms  p99 ${ms(getIdle.lat.p99)} ms  (${getIdle.lat.count} GETs)\n`);
    await sleep(500);
    const rssBefore = currentRss(srv.pid);

    const t0 = process.hrtime.bigint();
    const port = Number(new URL(srv.clientUrl).port);
    polls = await openLongPolls({
      host: '127.0.0.1', port, path: `/v2/keys${WATCH_KEY}?wait=true`, count: n, concurrency: s.watchConcurrency, slotTimeoutMs: 1000,
    });
    const registered = await waitHeaders(polls, s.watchTimeoutSeconds * 1000);
    const openSeconds = since(t0);
    process.stdout.write(`opened ${n} long polls in ${openSeconds.toFixed(2)} s: ${registered} registered (response headers received)` +
      (registered < n ? `, ${polls.filter((p) => p.error !== undefined).length} failed` : '') + '\n');
    if (registered < n) {
      // A server that does not flush the headers of a pending long poll gives no registration
      // signal: fall back to a fixed settle time, and say so.
      process.stdout.write(`  ! not every poll answered its headers: waiting a fixed 5 s for the rest to register\n`);
      await sleep(5000);
    }
    await sleep(1000);
    const rssAfter = currentRss(srv.pid);
    // Per open poll rather than per registered one: a server that does not flush headers still holds them.
    const held = polls.filter((p) => p.error === undefined && p.doneAt === undefined).length;
    process.stdout.write(`server RSS ${mib(rssBefore.total)} -> ${mib(rssAfter.total)} (anon ${mib(rssBefore.anon)} -> ${mib(rssAfter.anon)}): ` +
      `${f0(((rssAfter.total ?? NaN) - (rssBefore.total ?? NaN)) / Math.max(1, held))} B per watcher (${held} open polls)\n`);

    const getWaiting = await probeGet(srv, s.probeSeconds);
    process.stdout.write(`GET latency, ${held} watchers waiting: p50 ${ms(getWaiting.lat.p50)} ms  p99 ${ms(getWaiting.lat.p99)} ms  (${getWaiting.lat.count} GETs)\n`);

    const early = polls.filter((p) => p.error !== undefined || p.doneAt !== undefined);
    const failedBefore = early.length;
    const firstError = early.map((p) => p.error ?? `ended before the write with HTTP ${p.scanner.status}: ${p.scanner.body().slice(0, 120)}`)[0];
    if (failedBefore > 0) process.stdout.write(`  ! ${failedBefore} polls ended or failed before the write; first: ${firstError}\n`);

    // The write: every still-waiting poll should now get this event.
    const pool = makePool(srv.clientUrl, 1);
    const value = `w${Date.now()}`;
    const cpu0 = cpuSeconds(srv.pid);
    const benchCpu0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    let writeMs = NaN;
    try {
      await v2Put(pool, WATCH_KEY, value);
      writeMs = since(w0) * 1000;
    } finally {
      await pool.close();
    }
    const earlySet = new Set(early);
    const waiting = polls.filter((p) => !earlySet.has(p));
    await waitDone(waiting, s.watchTimeoutSeconds * 1000);
    const waitedSeconds = since(w0);
    const lastDone = waiting.reduce((m, p) => (p.doneAt !== undefined && p.doneAt > m ? p.doneAt : m), w0);
    const deliveryCpu = cpuSeconds(srv.pid) - cpu0;
    const bc = process.cpuUsage(benchCpu0);
    const benchDeliveryCpu = (bc.user + bc.system) / 1e6;
    const done = waiting.filter((p) => p.doneAt !== undefined);
    const lat = new Float64Array(done.length);
    done.forEach((p, i) => {
      lat[i] = Number(p.doneAt! - w0) / 1000;
    });
    const deliveredOk = done.filter((p) => p.scanner.status === 200 && p.scanner.body().includes(`"value":"${value}"`)).length;
    const delivery = summarize([lat]);
    process.stdout.write(
      `write took ${ms(writeMs)} ms; delivered to ${done.length} of ${waiting.length} waiting polls (${deliveredOk} with the right event) ` +
        `in ${ms(Number(lastDone - w0) / 1e6)} ms: p50 ${ms(delivery.p50)} ms  p99 ${ms(delivery.p99)} ms  max ${ms(delivery.max)} ms; ` +
        `server CPU ${f2(deliveryCpu)} s, bench CPU ${f2(benchDeliveryCpu)} s\n`,
    );
    const missing = waiting.filter((p) => p.doneAt === undefined);
    if (missing.length > 0) {
      // What the polls without an event hold: nothing after the headers (the server never sent
      // the event), part of a body (it stalled mid-response), or an error.
      const partial = missing.filter((p) => p.scanner.body().length > 0);
      const errs = missing.filter((p) => p.error !== undefined);
      process.stdout.write(
        `  ! ${missing.length} polls got no complete event within ${waitedSeconds.toFixed(1)} s of the write: ${missing.length - partial.length - errs.length} with nothing after the headers, ` +
          `${partial.length} with part of a body${partial[0] === undefined ? '' : ` (e.g. ${JSON.stringify(partial[0].scanner.body().slice(0, 120))})`}, ${errs.length} failed${errs[0] === undefined ? '' : ` (e.g. ${errs[0].error})`}\n`,
      );
    }
    const res: WatchResult = {
      server: name, requested: n, registered, held, failedBefore, openSeconds, rssBefore, rssAfter, getIdle, getWaiting, writeMs,
      delivered: done.length, deliveredOk, delivery, deliveryCpu, benchDeliveryCpu, deliveryWallMs: Number(lastDone - w0) / 1e6,
    };
    const anyError = firstError ?? waiting.find((p) => p.error !== undefined)?.error;
    if (anyError !== undefined) res.firstError = anyError;
    return res;
  } finally {
    closeAll(polls);
    await srv.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// report

function etcdVersion(): string {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

/** The issues' goals, each with the measured ratio; undefined when a server of the pair was not run. */
function goals(rows: Row[]): string[] {
  const row = (srv: ServerName, w: string): Row | undefined => rows.find((r) => r.server === srv && r.workload === w);
  const goal = (subject: ServerName, what: string, w: string, vs: ServerName, want: number): string | undefined => {
    const o = row(subject, w);
    const e = row(vs, w);
    if (o === undefined || e === undefined) return undefined;
    const ratio = o.opsPerSec / e.opsPerSec;
    // CPU per op does not depend on how much CPU the generator and other processes left over:
    // on a shared 2-core box it is the steadier comparison, so it is printed next to the verdict.
    return `- ${subject}: ${what}: ${f2(ratio)}x — ${ratio >= want ? 'met' : 'NOT met'} (server CPU per op: ${subject} ${f0(usPerOp(o))} µs, ${vs} ${f0(usPerOp(e))} µs)`;
  };
  const lines = [
    goal('ours', 'GET >= 2x etcd v2v3 (issue 4)', 'get1', 'v2v3', 2),
    goal('ours', 'PUT >= 2x etcd v2v3 (issue 4)', 'put', 'v2v3', 2),
    goal('ours', 'PUT >= 1x etcd native v2 (issue 4)', 'put', 'native', 1),
    goal('upstream', 'GET >= 2x etcd v2v3 (issue 6)', 'get1', 'v2v3', 2),
    goal('upstream', 'PUT >= 2x etcd v2v3 (issue 6)', 'put', 'v2v3', 2),
  ].filter((l): l is string => l !== undefined);
  return lines.length > 0 ? lines : ['- not measured in this run (a goal needs ours or upstream, and its etcd baseline)'];
}

function report(s: Settings, rows: Row[], stats: ServerStats[], watches: WatchResult[]): string {
  const get = (srv: ServerName, w: string): Row | undefined => rows.find((r) => r.server === srv && r.workload === w);
  const out: string[] = [];
  out.push(
    `v2 keys API over HTTP/1.1; ${cpus().length}× ${cpus()[0]?.model.trim() ?? '?'}; etcd ${etcdVersion()}, node ${process.version}; ` +
      `native = ${SERVER_TEXT.native}, v2v3 = ${SERVER_TEXT.v2v3}, ours = ${SERVER_TEXT.ours}`,
  );
  if (rows.length > 0) {
    out.push('');
    out.push(
      `${s.inflight} keep-alive connections with one request each (undici, pipelining 1), generator in ` +
        `${s.genThreads === 0 ? 'the main thread' : `${s.genThreads} worker thread(s)`}, ${s.warmupSeconds} s warmup + ${s.seconds} s measured per row` +
        `${s.repeat > 1 ? ` (median of ${s.repeat} runs by ops/s)` : ''}${s.profile ? '; ours CPU-profiled (its numbers include the profiler overhead)' : ''}:`,
    );
    out.push('');
    const run = SERVERS.concat(['upstream']).filter((n) => s.servers.includes(n));
    const pairs = SUBJECTS.filter((x) => run.includes(x)).flatMap((x) => BASELINES.filter((b) => run.includes(b)).map((b) => [x, b] as const));
    out.push(`| workload | ${run.map((n) => `${n} ops/s`).join(' | ')} | ${pairs.map(([x, b]) => `${x}/${b}`).join(' | ')} | ${run.map((n) => `${n} p50/p99 ms`).join(' | ')} |`);
    out.push(`| --- |${' ---: |'.repeat(run.length * 2 + pairs.length)}`);
    for (const w of s.rows) {
      const opsText = (x: Row | undefined): string => (x === undefined ? '–' : f0(x.opsPerSec));
      const ratio = (a: Row | undefined, b: Row | undefined): string => (a === undefined || b === undefined ? '–' : f2(a.opsPerSec / b.opsPerSec));
      const pair = (x: Row | undefined): string => (x === undefined ? '–' : `${ms(x.lat.p50)} / ${ms(x.lat.p99)}`);
      out.push(`| ${DESCRIPTION[w.name] ?? w.name} | ${run.map((n) => opsText(get(n, w.name))).join(' | ')} | ` +
        `${pairs.map(([x, b]) => ratio(get(x, w.name), get(b, w.name))).join(' | ')} | ${run.map((n) => pair(get(n, w.name))).join(' | ')} |`);
    }
    out.push('');
    out.push('Goals:');
    out.push(...goals(rows));
    out.push('');
    out.push(`| server | peak RSS (VmHWM) | RSS at the end: anon + file | server CPU µs/op: ${s.rows.map((w) => w.name).join(' / ')} |`);
    out.push('| --- | ---: | ---: | ---: |');
    for (const st of stats) {
      const cpu = s.rows.map((w) => {
        const r = get(st.server, w.name);
        return r === undefined ? '–' : f0(usPerOp(r));
      });
      out.push(`| ${st.server} | ${mib(st.peakRss)} | ${mib(st.endRss.anon)} + ${mib(st.endRss.file)} | ${cpu.join(' / ')} |`);
    }
    out.push('');
    out.push(...rowDetailsTable(rows));
  }
  if (watches.length > 0) {
    const n = watches[0]!.requested;
    out.push('');
    out.push(
      `${WATCH}: ${n} concurrent \`GET /v2/keys${WATCH_KEY}?wait=true\`, one TCP connection each (bench main thread, raw sockets), on a fresh server. ` +
        `Registered = the poll's response headers arrived (etcd 3.4, both modes, and ours when this bench was written flush them once the watcher is registered; ` +
        `polls without headers are still counted as open). ` +
        `Memory per watcher = (VmRSS after registering − before) / polls open. GET = sequential GETs of another key on one connection for ${s.probeSeconds} s, ` +
        `before the watchers and while they wait. Delivery = from the start of one PUT of the watched key to the end of each poll's response ` +
        `(includes the bench's own handling of ${n} responses on one thread: ` +
        `its CPU time is in the last column, next to the server's, over the same interval).`,
    );
    out.push('');
    out.push('| server | registered | opened in | RSS before → after | per watcher | GET p50/p99 ms, no watchers | GET p50/p99 ms, watchers waiting | latency of the PUT itself | delivered (right event) | delivery p50 / p99 / max ms | CPU s during the delivery: server / bench |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const w of watches) {
      const per = ((w.rssAfter.total ?? NaN) - (w.rssBefore.total ?? NaN)) / Math.max(1, w.held);
      out.push(
        `| ${w.server} | ${w.registered} of ${w.requested} | ${f2(w.openSeconds)} s | ${mib(w.rssBefore.total)} → ${mib(w.rssAfter.total)} | ${f0(per / 1024)} KiB | ` +
          `${ms(w.getIdle.lat.p50)} / ${ms(w.getIdle.lat.p99)} | ${ms(w.getWaiting.lat.p50)} / ${ms(w.getWaiting.lat.p99)} | ` +
          `${ms(w.writeMs)} ms | ${w.delivered} (${w.deliveredOk}) | ${ms(w.delivery.p50)} / ${ms(w.delivery.p99)} / ${ms(w.delivery.max)} | ${f2(w.deliveryCpu)} / ${f2(w.benchDeliveryCpu)} |`,
      );
    }
    for (const w of watches) {
      if (w.failedBefore > 0 || w.delivered < w.requested - w.failedBefore || w.firstError !== undefined) {
        out.push(`- ${w.server}: ${w.failedBefore} polls failed or ended before the write, ${w.requested - w.failedBefore - w.delivered} waiting polls got no event within ${s.watchTimeoutSeconds} s; first error: ${w.firstError ?? 'none'}`);
      }
    }
  }
  return out.join('\n');
}

export async function main(_args: string[]): Promise<number> {
  return runV2(settings());
}

/** Runs the rows and the watch bench on each server of `s`, one server at a time; prints the report. */
export async function runV2(s: Settings): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  process.stdout.write(
    `settings: servers ${s.servers.join(', ')}; rows ${s.rows.map((w) => w.name).join(', ') || 'none'} at ${s.warmupSeconds}+${s.seconds} s, ` +
      `${s.inflight} connections, generator ${s.genThreads === 0 ? 'in the main thread' : `in ${s.genThreads} worker thread(s)`}` +
      `${s.repeat > 1 ? `, ${s.repeat} repetitions` : ''}${s.profile ? ', profiling ours' : ''}` +
      `${s.watch ? `; ${WATCH} with ${s.watchers} watchers` : ''}\n`,
  );
  const rows: Row[] = [];
  const stats: ServerStats[] = [];
  const watches: WatchResult[] = [];
  let failed = false;
  for (const name of s.servers) {
    if (s.rows.length > 0) {
      const r = await benchThroughput(name, s, stamp);
      rows.push(...r.rows);
      stats.push(r.stats);
      if (r.rows.some((x) => x.errors > 0)) failed = true;
    }
    if (s.watch) watches.push(await benchWatchers(name, s));
  }
  process.stdout.write('\n' + report(s, rows, stats, watches) + '\n');
  return failed ? 1 : 0;
}
