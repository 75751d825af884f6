// `npm run bench -- cluster`: a 3-member cluster of ours against a 3-member real etcd 3.4 cluster,
// one after the other on loopback (both with --heartbeat-interval 50 --election-timeout 500, as
// the test helpers start them): put throughput and latency at BENCH_INFLIGHT (64) in flight
// against the leader, linearizable range1 on a follower (every read pays a ReadIndex round to the
// leader), and the time from SIGKILL of the leader until the two others agree on a new one.
import { startEtcdCluster } from '../test/helpers/cluster.js';
import { startOurCluster } from '../test/helpers/ourcluster.js';
import { agreedLeader, endpointStatus } from '../test/cluster/helpers.js';
import { preload, runGenerator, type KvWorkload } from './lib/kvload.js';
import { summarize } from './lib/latency.js';
import { envList, envNum } from './lib/env.js';
import { cpuSeconds, systemBusySeconds, writeBytes } from './lib/procstat.js';
import { InspectorProfiler, saveProfile } from './lib/profiler.js';
import { freePort } from '../test/helpers/procs.js';
import { join } from 'node:path';

const KEYS = 10_000;
const VALUE_SIZE = 256;
const WORKLOADS: (KvWorkload & { on: 'leader' | 'follower' })[] = [
  { name: 'put', op: 'put', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 0, serializable: false, on: 'leader' },
  { name: 'range1', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 1, serializable: false, on: 'follower' },
];

interface Result { ops: Map<string, { ops: number; p50: number; p99: number; errors: number }>; electMs: number }

interface ClusterUnderTest {
  endpoints: string[];
  /** PIDs of the members, in endpoint order (for their CPU). */
  pids(): number[];
  /** BENCH_PROFILE=1, ours: each member's inspector port, in endpoint order. */
  inspectPorts?: number[];
  kill9(i: number): Promise<void>;
  stop(): Promise<void>;
}

const f0 = (n: number): string => n.toFixed(0);
const ms = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));

/** Counters and histogram sums/counts from a member's /metrics (etcd's and ours). */
async function scrape(endpoint: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = await (await fetch(`http://${endpoint}/metrics`)).text();
    for (const line of text.split('\n')) {
      const m = /^(etcd_disk_wal_fsync_duration_seconds_(?:sum|count)|etcd_disk_backend_commit_duration_seconds_(?:sum|count)|etcd_network_peer_(?:sent|received)_bytes_total\{[^}]*\}|etcd_gateway_peer_messages_sent_total\{[^}]*\}) (\S+)$/.exec(line);
      if (m !== null) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    }
  } catch {
    // a member without metrics: nothing to show
  }
  return out;
}

/** What one member spent per op over the measured window: CPU, WAL fsyncs and their mean time. */
function perOpDetail(role: string, ops: number, cpu: number, written: number, m0: Map<string, number>, m1: Map<string, number>): string {
  const d = (k: string): number => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
  const fsyncs = d('etcd_disk_wal_fsync_duration_seconds_count');
  const fsyncMs = fsyncs > 0 ? (d('etcd_disk_wal_fsync_duration_seconds_sum') / fsyncs) * 1000 : NaN;
  const commits = d('etcd_disk_backend_commit_duration_seconds_count');
  const commitMs = commits > 0 ? (d('etcd_disk_backend_commit_duration_seconds_sum') / commits) * 1000 : NaN;
  const peers = [...m1.keys()].filter((k) => k.startsWith('etcd_gateway_peer_messages_sent_total') || k.startsWith('etcd_network_peer_sent_bytes_total'))
    .map((k) => `${k.replace(/^etcd_(gateway|network)_peer_/, '')}=${f0(d(k) / Math.max(1, ops) * 1000)}/kop`);
  return `    ${role.padEnd(9)} CPU ${f0((cpu / Math.max(1, ops)) * 1e6).padStart(4)} µs/op (${(cpu / 1).toFixed(2)} core-s)  disk writes ${Number.isNaN(written) ? 'n/a' : f0(written / Math.max(1, ops))} B/op` +
    `  WAL fsyncs ${(fsyncs / Math.max(1, ops)).toFixed(3)}/op, ${ms(fsyncMs)} ms each  backend commits ${(commits / Math.max(1, ops)).toFixed(3)}/op, ${ms(commitMs)} ms each` +
    (peers.length > 0 ? `  ${peers.join(' ')}` : '') + '\n';
}

async function leaderIndex(endpoints: string[]): Promise<{ leader: bigint; index: number }> {
  for (;;) {
    const leader = await agreedLeader(endpoints).catch(() => undefined);
    if (leader !== undefined) {
      const st = await endpointStatus(endpoints.join(','));
      const ep = st.find((s) => BigInt(s.Status.header.member_id) === leader)!.Endpoint;
      return { leader, index: endpoints.indexOf(ep) };
    }
    await sleep(50);
  }
}

async function measure(name: string, c: ClusterUnderTest): Promise<Result> {
  const seconds = envNum('BENCH_SECONDS', 5);
  const warmup = envNum('BENCH_WARMUP_SECONDS', 1);
  const inflight = Math.max(1, envNum('BENCH_INFLIGHT', 64));
  const threads = envNum('BENCH_GEN_THREADS', 2);
  const clients = envNum('BENCH_CLIENTS', 4);
  const workloads = envList('BENCH_WORKLOADS', WORKLOADS.map((w) => w.name)).map((n) => WORKLOADS.find((w) => w.name === n)!);
  const { leader, index } = await leaderIndex(c.endpoints);
  const follower = c.endpoints[(index + 1) % c.endpoints.length]!;
  await preload(c.endpoints[index]!, KEYS, VALUE_SIZE, inflight);
  const ops = new Map<string, { ops: number; p50: number; p99: number; errors: number }>();
  for (const w of workloads) {
    const endpoint = w.on === 'leader' ? c.endpoints[index]! : follower;
    const pids = c.pids();
    let cpu0: number[] = [];
    let cpu1: number[] = [];
    let m0: Map<string, number>[] = [];
    let m1: Map<string, number>[] = [];
    let wb0: (number | undefined)[] = [];
    let wb1: (number | undefined)[] = [];
    let sys0 = 0;
    let sys1 = 0;
    let bench0 = process.cpuUsage();
    let benchCpu = 0;
    // BENCH_PROFILE=1: a CPU profile of the member the load goes to and of the other one, over the window.
    const profiled = c.inspectPorts === undefined ? [] : await Promise.all(
      [c.endpoints.indexOf(endpoint), c.endpoints.findIndex((e, i) => e !== endpoint && i !== (w.on === 'leader' ? -1 : index))]
        .map(async (i) => ({ i, p: await InspectorProfiler.connect(c.inspectPorts![i]!) })),
    );
    const r = await runGenerator({
      endpoint, workload: w, inflight, clients, threads, warmupMs: warmup * 1000, measureMs: seconds * 1000,
      onWindowStart: async () => {
        await Promise.all(profiled.map((x) => x.p.start()));
        cpu0 = pids.map((p) => cpuSeconds(p));
        wb0 = pids.map((p) => writeBytes(p));
        sys0 = systemBusySeconds();
        bench0 = process.cpuUsage();
        m0 = await Promise.all(c.endpoints.map(scrape));
      },
      onWindowEnd: async () => {
        cpu1 = pids.map((p) => cpuSeconds(p));
        wb1 = pids.map((p) => writeBytes(p));
        sys1 = systemBusySeconds();
        const u = process.cpuUsage(bench0);
        benchCpu = (u.user + u.system) / 1e6;
        m1 = await Promise.all(c.endpoints.map(scrape));
        for (const x of profiled) {
          const role = x.i === index ? 'leader' : 'follower';
          const file = join('bench', 'profiles', `cluster-${w.name}-${role}-${Date.now()}.cpuprofile`);
          saveProfile(file, await x.p.stop(), `ours cluster ${w.name}: the ${role}`);
          x.p.close();
          process.stdout.write(`  profile: ${file} (summary: .md next to it)\n`);
        }
      },
    });
    const lat = summarize(r.latencies);
    const row = { ops: r.ops / r.seconds, p50: lat.p50, p99: lat.p99, errors: r.errors };
    ops.set(w.name, row);
    process.stdout.write(`${name.padEnd(5)} ${w.name.padEnd(7)} on the ${w.on.padEnd(8)} ${f0(row.ops).padStart(7)} ops/s  p50 ${ms(row.p50)} ms  p99 ${ms(row.p99)} ms${r.errors > 0 ? `  ${r.errors} errors: ${r.firstError}` : ''}\n`);
    // The machine is shared: what the members, the bench (generator threads included) and every
    // other process used of it over the window, in cores.
    const membersCpu = cpu1.reduce((a, v, i) => a + v - (cpu0[i] ?? 0), 0);
    process.stdout.write(`    cores: members ${(membersCpu / r.seconds).toFixed(2)}, bench ${(benchCpu / r.seconds).toFixed(2)}, other processes ${(Math.max(0, sys1 - sys0 - membersCpu - benchCpu) / r.seconds).toFixed(2)}\n`);
    for (let i = 0; i < pids.length; i++) {
      const role = i === index ? 'leader' : c.endpoints[i] === follower ? 'follower*' : 'follower';
      const written = wb0[i] === undefined || wb1[i] === undefined ? NaN : wb1[i]! - wb0[i]!;
      process.stdout.write(perOpDetail(role, r.ops, (cpu1[i] ?? 0) - (cpu0[i] ?? 0), written, m0[i] ?? new Map(), m1[i] ?? new Map()));
    }
  }
  // Failover: SIGKILL the leader, then poll the two others until they agree on a new one.
  const t0 = performance.now();
  await c.kill9(index);
  const rest = c.endpoints.filter((_, i) => i !== index);
  for (;;) {
    const l = await agreedLeader(rest).catch(() => undefined);
    if (l !== undefined && l !== leader) break;
    await sleep(10);
  }
  const electMs = performance.now() - t0;
  process.stdout.write(`${name.padEnd(5)} new leader ${f0(electMs)} ms after SIGKILL of the leader\n`);
  return { ops, electMs };
}

export async function main(_args: string[]): Promise<number> {
  const results = new Map<string, Result>();
  for (const which of envList('BENCH_SERVERS', ['etcd', 'ours'])) {
    if (which === 'etcd') {
      const c = await startEtcdCluster(3);
      try {
        results.set('etcd', await measure('etcd', { endpoints: c.members.map((m) => m.endpoint), pids: () => c.members.map((m) => m.server!.pid), kill9: (i) => c.kill9(i), stop: () => c.stop() }));
      } finally {
        await c.stop();
      }
    } else {
      const profile = process.env.BENCH_PROFILE === '1';
      const ports = profile ? [await freePort(), await freePort(), await freePort()] : [];
      const c = await startOurCluster(3, profile ? { memberEnv: (n) => ({ NODE_OPTIONS: `--inspect=127.0.0.1:${ports[Number(n.slice(1))]!}` }) } : {});
      try {
        results.set('ours', await measure('ours', { endpoints: c.members.map((m) => m.endpoint), pids: () => c.members.map((m) => m.server!.pid), ...(profile ? { inspectPorts: ports } : {}), kill9: (i) => c.kill9(i), stop: () => c.stop() }));
      } finally {
        await c.stop();
      }
    }
  }
  const e = results.get('etcd');
  const o = results.get('ours');
  if (e === undefined || o === undefined) return 0;
  const out = ['', '| workload (3 members) | etcd ops/s | ours ops/s | ratio | etcd p50/p99 ms | ours p50/p99 ms |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const [name, er] of e.ops) {
    const or = o.ops.get(name);
    if (or === undefined) continue;
    out.push(`| ${name} | ${f0(er.ops)} | ${f0(or.ops)} | ${(or.ops / er.ops).toFixed(2)} | ${ms(er.p50)} / ${ms(er.p99)} | ${ms(or.p50)} / ${ms(or.p99)} |`);
  }
  out.push(`| new leader after SIGKILL | ${f0(e.electMs)} ms | ${f0(o.electMs)} ms | ${(e.electMs / o.electMs).toFixed(2)} | | |`);
  process.stdout.write(out.join('\n') + '\n');
  return [...e.ops.values(), ...o.ops.values()].some((r) => r.errors > 0) ? 1 : 0;
}
