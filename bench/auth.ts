// `npm run bench -- auth`: what auth costs per request. The same rows (gRPC and gateway put and
// range1, v2 GET and PUT) on a server with auth off and with auth on, for real etcd 3.4 and for
// ours, one server instance at a time, each on a fresh temp data dir. With auth on the load runs as
// a NON-root user holding a readwrite permission on the bench prefix (root would skip the
// permission check), with a simple token, a JWT (v3 rows) or HTTP basic auth (v2 rows).
// See bench/README.md, "auth".
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { ETCD_BIN, PROJECT_ROOT, etcdctl, makeTempDir, removeTempDir, startOurServer, startRealEtcd, type Server } from '../test/helpers/procs.js';
import { envList, envNum } from './lib/env.js';
import { makePool } from './lib/httpload.js';
import { KEY_PREFIX, preload, type KvWorkload } from './lib/kvload.js';
import { startOursWithInspector, type InspectorProfiler } from './lib/profiler.js';
import { f0, f2, measureGrpc, measureHttp, ms, printRow, usPerOp, type Row } from './lib/rows.js';
import { basicAuth, preloadV2, type V2Workload } from './lib/v2load.js';

type ServerName = 'etcd' | 'ours';

/**
 * One server instance per setup, with auth turned off and on in turns on that same instance (same
 * data, same heap history: the pairs differ only in auth). The v3 rows (gRPC, gateway) run with a
 * simple token or a JWT (a token provider is fixed per process), the v2 rows with basic auth, on
 * an instance of their own: etcd 3.4 keeps v2 auth (users, roles, enable) apart from v3 auth.
 */
type Setup = 'simple' | 'jwt' | 'basic';
const SETUPS: Setup[] = ['simple', 'jwt', 'basic'];
const API_OF: Record<Setup, 'v3' | 'v2'> = { simple: 'v3', jwt: 'v3', basic: 'v2' };
const AUTH_TEXT: Record<Setup, string> = { simple: 'simple token', jwt: 'JWT (RS256)', basic: 'basic auth' };

const KEYS = 10_000;
const VALUE_SIZE = 256;
const V2_KEYS = 1000;
const V2_VALUE_SIZE = 32;

interface AuthRow {
  name: string;
  api: 'v3' | 'v2';
  proto: 'grpc' | 'gateway' | 'v2';
  describe: string;
  workload: KvWorkload | V2Workload;
}

const ROWS: AuthRow[] = [
  { name: 'grpc-put', api: 'v3', proto: 'grpc', describe: `gRPC Put ${VALUE_SIZE} B`, workload: { name: 'grpc-put', op: 'put', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 0, serializable: false } },
  { name: 'grpc-range1', api: 'v3', proto: 'grpc', describe: 'gRPC Range 1 key', workload: { name: 'grpc-range1', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 1, serializable: false } },
  { name: 'gw-put', api: 'v3', proto: 'gateway', describe: `POST /v3/kv/put ${VALUE_SIZE} B`, workload: { name: 'gw-put', op: 'put', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 0, serializable: false } },
  { name: 'gw-range1', api: 'v3', proto: 'gateway', describe: 'POST /v3/kv/range 1 key', workload: { name: 'gw-range1', op: 'range', keyCount: KEYS, valueSize: VALUE_SIZE, rangeWidth: 1, serializable: false } },
  { name: 'v2-get1', api: 'v2', proto: 'v2', describe: 'v2 GET 1 key', workload: { name: 'v2-get1', api: 'v2', op: 'get', keyCount: V2_KEYS, valueSize: V2_VALUE_SIZE } },
  { name: 'v2-put', api: 'v2', proto: 'v2', describe: `v2 PUT ${V2_VALUE_SIZE} B form value`, workload: { name: 'v2-put', api: 'v2', op: 'put', keyCount: V2_KEYS, valueSize: V2_VALUE_SIZE } },
];

/** The non-root user the load runs as, and root (needed to enable auth at all). */
const USER = { name: 'bench', password: 'bench-pw', role: 'bench' };
const ROOT_PASSWORD = 'root-pw';

interface Settings {
  seconds: number;
  warmupSeconds: number;
  inflight: number;
  clients: number;
  genThreads: number;
  servers: ServerName[];
  setups: Setup[];
  rows: AuthRow[];
  repeat: number;
  profile: boolean;
}

function settings(): Settings {
  const rows = envList('BENCH_WORKLOADS', ROWS.map((r) => r.name));
  return {
    seconds: envNum('BENCH_SECONDS', 5),
    warmupSeconds: envNum('BENCH_WARMUP_SECONDS', 1),
    inflight: Math.max(1, envNum('BENCH_INFLIGHT', 64)),
    clients: Math.max(1, envNum('BENCH_CLIENTS', 4)),
    genThreads: envNum('BENCH_GEN_THREADS', 2),
    servers: envList('BENCH_SERVERS', ['etcd', 'ours']) as ServerName[],
    setups: envList('BENCH_AUTH', SETUPS) as Setup[],
    rows: ROWS.filter((r) => rows.includes(r.name)),
    repeat: Math.max(1, Math.floor(envNum('BENCH_REPEAT', 3))),
    profile: process.env.BENCH_PROFILE === '1',
  };
}

// ---------------------------------------------------------------------------------------------
// servers and auth setup

/** --auth-token for JWTs: a fresh RSA key pair in `dir` (etcd and ours take the same flag). */
async function jwtArgs(dir: string): Promise<string[]> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = join(dir, 'jwt.pub.pem');
  const priv = join(dir, 'jwt.priv.pem');
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return ['--auth-token', `jwt,pub-key=${pub},priv-key=${priv},sign-method=RS256,ttl=30m`];
}

async function startServer(name: ServerName, setup: Setup, s: Settings, keyDir: string): Promise<{ srv: Server; profiler?: InspectorProfiler }> {
  const args = setup === 'jwt' ? await jwtArgs(keyDir) : [];
  if (name === 'etcd') return { srv: await startRealEtcd({ enableV2: API_OF[setup] === 'v2', extraArgs: args }) };
  return s.profile ? startOursWithInspector(args) : { srv: await startOurServer({ extraArgs: args }) };
}

async function ctl(srv: Server, args: string[]): Promise<void> {
  const r = await etcdctl(srv.endpoint, args);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
}

/** v3 auth: root (user and role), a role with READWRITE on the bench prefix, its user. */
async function setupV3Users(srv: Server): Promise<void> {
  await ctl(srv, ['user', 'add', `root:${ROOT_PASSWORD}`]);
  await ctl(srv, ['role', 'add', 'root']);
  await ctl(srv, ['user', 'grant-role', 'root', 'root']);
  await ctl(srv, ['role', 'add', USER.role]);
  await ctl(srv, ['role', 'grant-permission', USER.role, 'readwrite', KEY_PREFIX, '--prefix=true']);
  await ctl(srv, ['user', 'add', `${USER.name}:${USER.password}`]);
  await ctl(srv, ['user', 'grant-role', USER.name, USER.role]);
}

/** A token for the bench user, from the gateway's Authenticate (the same for every connection). */
async function authenticate(srv: Server): Promise<string> {
  const r = await request(`${srv.clientUrl}/v3/auth/authenticate`, {
    method: 'POST', body: JSON.stringify({ name: USER.name, password: USER.password }), headers: { 'content-type': 'application/json' },
  });
  const text = await r.body.text();
  const token = (JSON.parse(text) as { token?: string }).token;
  if (r.statusCode !== 200 || token === undefined || token === '') throw new Error(`authenticate: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  return token;
}

async function v2Auth(srv: Server, method: 'PUT' | 'DELETE', path: string, body?: unknown, authorization?: string): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== undefined) headers.authorization = authorization;
  const r = await request(`${srv.clientUrl}/v2/auth${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await r.body.text();
  if (r.statusCode >= 300) throw new Error(`${method} /v2/auth${path}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
}

/** v2 auth through the /v2/auth API (etcd's own v2 store; ours maps it on v3 auth): same shape as v3. */
async function setupV2Users(srv: Server): Promise<void> {
  await v2Auth(srv, 'PUT', '/users/root', { user: 'root', password: ROOT_PASSWORD });
  await v2Auth(srv, 'PUT', `/roles/${USER.role}`, { role: USER.role, permissions: { kv: { read: ['/bench/*'], write: ['/bench/*'] } } });
  await v2Auth(srv, 'PUT', `/users/${USER.name}`, { user: USER.name, password: USER.password });
  await v2Auth(srv, 'PUT', `/users/${USER.name}`, { user: USER.name, grant: [USER.role] });
}

/**
 * Turns auth on (returning what the load must send: a fresh token, or basic credentials) or off
 * (root's credentials; returning nothing to send).
 */
async function switchAuth(srv: Server, setup: Setup, on: boolean): Promise<{ token?: string; authorization?: string }> {
  if (API_OF[setup] === 'v2') {
    if (on) {
      await v2Auth(srv, 'PUT', '/enable');
      return { authorization: basicAuth(USER.name, USER.password) };
    }
    await v2Auth(srv, 'DELETE', '/enable', undefined, basicAuth('root', ROOT_PASSWORD));
    return {};
  }
  if (on) {
    await ctl(srv, ['auth', 'enable']);
    // Every enable is a new auth revision: a token from an earlier round would be refused.
    return { token: await authenticate(srv) };
  }
  await ctl(srv, [`--user=root:${ROOT_PASSWORD}`, 'auth', 'disable']);
  return {};
}

// ---------------------------------------------------------------------------------------------
// rows

interface Measured {
  server: ServerName;
  setup: Setup;
  row: AuthRow;
  /** every repetition, auth off and on; off[i] and on[i] ran back to back */
  off: Row[];
  on: Row[];
}

async function benchSetup(name: ServerName, setup: Setup, s: Settings, stamp: string): Promise<Measured[]> {
  const rows = s.rows.filter((r) => r.api === API_OF[setup]);
  if (rows.length === 0) return [];
  const keyDir = await makeTempDir('bench-auth-');
  const { srv, profiler } = await startServer(name, setup, s, keyDir);
  const out: Measured[] = [];
  try {
    process.stdout.write(`\n== ${name}, ${AUTH_TEXT[setup]} (pid ${srv.pid}, ${srv.clientUrl})\n`);
    if (API_OF[setup] === 'v3') {
      await preload(srv.endpoint, KEYS, VALUE_SIZE, s.inflight);
      await setupV3Users(srv);
    } else {
      const pool = makePool(srv.clientUrl, s.inflight);
      try {
        await preloadV2(pool, V2_KEYS, V2_VALUE_SIZE, s.inflight);
      } finally {
        await pool.close();
      }
      await setupV2Users(srv);
    }
    let authOn = false;
    let cred: { token?: string; authorization?: string } = {};
    for (const row of rows) {
      const m: Measured = { server: name, setup, row, off: [], on: [] };
      for (let rep = 0; rep < s.repeat; rep++) {
        // off, on, then on, off, ...: a drift of the machine over the pair falls on both sides alike.
        const order = rep % 2 === 0 ? [false, true] : [true, false];
        for (const on of order) {
          if (on !== authOn) {
            cred = await switchAuth(srv, setup, on);
            authOn = on;
          }
          const w = { ...row.workload, ...cred } as KvWorkload & V2Workload;
          const tag = `${on ? 'on' : 'off'}`;
          const file = rep === 0 && profiler !== undefined
            ? join(PROJECT_ROOT, 'bench', 'profiles', `ours-auth-${setup}-${row.name}-${tag}-${stamp}.cpuprofile`) : undefined;
          const prof = file === undefined ? undefined : { profiler: profiler!, file };
          const r = row.proto === 'grpc' ? await measureGrpc(name, srv, w, s, prof) : await measureHttp(name, srv, w, s, prof);
          (on ? m.on : m.off).push(r);
          printRow(r, ` ${tag}${s.repeat > 1 ? ` #${rep + 1}` : ''}`, 20);
          if (file !== undefined) process.stdout.write(`  profile: ${file} (summary: .md next to it)\n`);
        }
      }
      out.push(m);
    }
    if (authOn) await switchAuth(srv, setup, false);
    return out;
  } finally {
    profiler?.close();
    await srv.stop();
    await removeTempDir(keyDir);
  }
}

// ---------------------------------------------------------------------------------------------
// report

function etcdVersion(): string {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : 'n/a');
const range = (xs: number[], fmt: (x: number) => string): string => (xs.length < 2 ? '' : ` [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`);

function report(s: Settings, results: Measured[]): string {
  const out: string[] = [];
  out.push(
    `auth off vs on, in turns on the same server instance; ${s.inflight} requests in flight (gRPC: ${s.clients} channels; HTTP: one keep-alive connection each), generator in ` +
      `${s.genThreads === 0 ? 'the main thread' : `${s.genThreads} worker thread(s)`}, ${s.warmupSeconds} s warmup + ${s.seconds} s measured per row, ` +
      `${s.repeat} pair(s) of runs; ${cpus().length}× ${cpus()[0]?.model.trim() ?? '?'}; etcd ${etcdVersion()}, node ${process.version}` +
      `${s.profile ? '; ours CPU-profiled (its numbers include the profiler overhead)' : ''}`,
  );
  out.push('');
  out.push(
    'Medians over the repetitions, [min–max] in brackets. CPU cost = on/off − 1 of the server CPU µs per op, per back-to-back pair ' +
      '(the primary figure: it does not depend on the generator, which shares the 2 cores); ops/s cost = 1 − on/off.',
  );
  out.push('');
  out.push('| server | row | auth | server CPU µs/op off | server CPU µs/op on | CPU cost | ops/s off | ops/s on | ops/s cost | p50 / p99 ms off | p50 / p99 ms on |');
  out.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const m of results) {
    const n = Math.min(m.off.length, m.on.length);
    const cpuOff = m.off.map(usPerOp);
    const cpuOn = m.on.map(usPerOp);
    const opsOff = m.off.map((r) => r.opsPerSec);
    const opsOn = m.on.map((r) => r.opsPerSec);
    const cpuCost = Array.from({ length: n }, (_, i) => cpuOn[i]! / cpuOff[i]! - 1);
    const opsCost = Array.from({ length: n }, (_, i) => 1 - opsOn[i]! / opsOff[i]!);
    const lat = (rs: Row[]): string => `${ms(median(rs.map((r) => r.lat.p50)))} / ${ms(median(rs.map((r) => r.lat.p99)))}`;
    out.push(
      `| ${m.server} | ${m.row.describe} | ${AUTH_TEXT[m.setup]} | ${f0(median(cpuOff))}${range(cpuOff, f0)} | ${f0(median(cpuOn))}${range(cpuOn, f0)} | ` +
        `**${pct(median(cpuCost))}**${range(cpuCost, pct)} | ${f0(median(opsOff))}${range(opsOff, f0)} | ${f0(median(opsOn))}${range(opsOn, f0)} | ` +
        `${pct(median(opsCost))}${range(opsCost, pct)} | ${lat(m.off)} | ${lat(m.on)} |`,
    );
  }
  out.push('');
  out.push('| server | auth | row | off / on | server CPU (cores) | generator CPU (cores) | other processes CPU | errors | ops/s of each run | µs/op of each run |');
  out.push('| --- | --- | --- | --- | --- | --- | --- | ---: | --- | --- |');
  for (const m of results) {
    for (const [tag, rs] of [['off', m.off], ['on', m.on]] as const) {
      const list = (f: (r: Row) => string): string => rs.map(f).join(', ');
      out.push(
        `| ${m.server} | ${AUTH_TEXT[m.setup]} | ${m.row.name} | ${tag} | ${list((r) => f2(r.serverCpu))} | ${list((r) => f2(r.benchCpu))} | ${list((r) => f2(r.otherCpu))} | ` +
          `${rs.reduce((a, r) => a + r.errors, 0)} | ${list((r) => f0(r.opsPerSec))} | ${list((r) => f0(usPerOp(r)))} |`,
      );
    }
  }
  return out.join('\n');
}

export async function main(_args: string[]): Promise<number> {
  const s = settings();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  process.stdout.write(
    `settings: ${s.warmupSeconds}+${s.seconds} s per row × ${s.repeat}, ${s.inflight} in flight, servers ${s.servers.join(',')}, ` +
      `setups ${s.setups.join(',')}, rows ${s.rows.map((r) => r.name).join(',')}${s.profile ? ', profiling ours' : ''}\n`,
  );
  const results: Measured[] = [];
  for (const name of s.servers) {
    for (const setup of s.setups) results.push(...(await benchSetup(name, setup, s, stamp)));
  }
  process.stdout.write('\n' + report(s, results) + '\n');
  // Errors of ours fail the run. etcd's are reported only: its v2 auth (bcrypt on every request)
  // overloads it until its own requests time out ("etcdserver: request timed out").
  return results.some((m) => m.server === 'ours' && [...m.off, ...m.on].some((r) => r.errors > 0)) ? 1 : 0;
}
