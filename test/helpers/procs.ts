// Real-process test harness: start a real etcd 3.4 or our server on free loopback ports with their
// own temp dirs, run etcdctl against them, and normalize etcdctl output so that two servers that saw
// the same request sequence compare equal.
//
// Every child started here is tracked by PID; stop()/kill9() signal only that PID. If the test
// process dies early (exit, SIGINT/SIGTERM/SIGHUP, EPIPE to a vanished test runner, or re-parenting
// after the runner was SIGKILLed) the children still alive are SIGKILLed and their temp dirs removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

export const ETCD_BIN = '/usr/bin/etcd';
export const ETCDCTL_BIN = '/usr/bin/etcdctl';

/** Project root: this file is compiled to dist/test/helpers/procs.js. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const OUR_MAIN = join(PROJECT_ROOT, 'dist', 'src', 'main.js');

/** The node flags the server runs with: those of main.js's `#!/usr/bin/env -S node ...` line. */
export function ourNodeFlags(): string[] {
  const first = readFileSync(OUR_MAIN, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first);
  if (m === null) throw new Error(`${OUR_MAIN}: unexpected first line ${JSON.stringify(first)}`);
  return m[1]!.split(' ').filter(Boolean);
}

const HEALTH_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export function hasEtcd(): boolean {
  return existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      const port = addr.port;
      srv.close((err) => (err ? reject(err) : resolvePort(port)));
    });
  });
}

export interface Server {
  name: 'etcd' | 'ours';
  /** "127.0.0.1:PORT", the form etcdctl --endpoints wants. */
  endpoint: string;
  /** "http://127.0.0.1:PORT" */
  clientUrl: string;
  /** The advertised peer URL (etcd: its real peer listener; ours: --initial-advertise-peer-urls or the default). */
  peerUrl: string;
  dataDir: string;
  /** Where the server's stdout/stderr go (removed with the temp dir on stop()). */
  logPath: string;
  pid: number;
  /** Resolves when the process exits: its exit code, or the signal that ended it. */
  exited: Promise<ExitInfo>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  kill9(): Promise<void>;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// ---------------------------------------------------------------------------------------------
// child tracking

const liveChildren = new Set<ChildProcess>();
/** Temp dirs owned by live servers, removed by the emergency hooks below if the test dies. */
const liveDirs = new Set<string>();
let hooksInstalled = false;

function emergencyCleanup(): void {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', emergencyCleanup);
  // node:test rethrows uncaught errors from its own handler, which skips 'exit' handlers; an EPIPE
  // means the test runner reading our stdout is gone, so nothing is left to report to.
  process.on('uncaughtExceptionMonitor', (err) => {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') emergencyCleanup();
  });
  // If the test runner dies (even by SIGKILL) this process is re-parented: do not leave servers behind.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      emergencyCleanup();
      process.exit(1);
    }
  }, 500).unref();
  // The test runner stops a test file with a signal, which skips 'exit' handlers: clean up, then
  // re-raise the signal with the default disposition so the process still dies of it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      emergencyCleanup();
      process.kill(process.pid, sig);
    });
  }
}

function track(child: ChildProcess): Promise<ExitInfo> {
  installHooks();
  liveChildren.add(child);
  return new Promise<ExitInfo>((resolveExit) => {
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      resolveExit({ code, signal });
    });
    child.once('error', () => {
      liveChildren.delete(child);
      resolveExit({ code: null, signal: null });
    });
  });
}

function exitCodeOf(e: ExitInfo): number {
  if (e.code !== null) return e.code;
  if (e.signal !== null) {
    const nums: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
    return 128 + (nums[e.signal] ?? 0);
  }
  return -1;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitExit(exited: Promise<ExitInfo>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const done = await Promise.race([exited.then(() => true as const), timedOut]);
  clearTimeout(timer);
  return done;
}

async function logTail(path: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(log ${path} unreadable: ${String(e)})`;
  }
}

/** A temp dir under os.tmpdir() that is also removed if the test process dies early. */
export async function makeTempDir(prefix: string): Promise<string> {
  installHooks();
  const d = await mkdtemp(join(tmpdir(), prefix));
  liveDirs.add(d);
  return d;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

// ---------------------------------------------------------------------------------------------
// server start

export interface SpawnSpec {
  name: 'etcd' | 'ours';
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  clientPort: number;
  peerUrl: string;
  dataDir: string;
  logPath: string;
  /** Directories removed when the server is stopped. */
  ownedDirs: string[];
  /** GET path that answers 200 once the server serves clients (default /health). */
  healthPath?: string;
}

class StartError extends Error {
  constructor(message: string, readonly addrInUse: boolean) {
    super(message);
  }
}

async function waitHealthy(clientUrl: string, healthPath: string, exited: Promise<ExitInfo>, what: string, logPath: string): Promise<void> {
  const agent = new Agent({ keepAliveTimeout: 1, keepAliveMaxTimeout: 1, connect: { timeout: 1000 } });
  let dead: ExitInfo | undefined;
  void exited.then((e) => {
    dead = e;
  });
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no attempt yet';
  try {
    while (Date.now() < deadline) {
      if (dead !== undefined) {
        const tail = await logTail(logPath);
        throw new StartError(
          `${what} exited during startup (code ${String(dead.code)}, signal ${String(dead.signal)}); log ${logPath}:\n${tail}`,
          /address already in use|EADDRINUSE/.test(tail),
        );
      }
      try {
        const res = await request(`${clientUrl}${healthPath}`, { dispatcher: agent, headersTimeout: 1000, bodyTimeout: 1000 });
        const body = await res.body.text();
        if (res.statusCode === 200) return;
        last = `HTTP ${res.statusCode}: ${body.slice(0, 200)}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await sleep(50);
    }
    const tail = await logTail(logPath);
    throw new StartError(`${what} not healthy at ${clientUrl}${healthPath} after ${HEALTH_TIMEOUT_MS} ms (last: ${last}); log ${logPath}:\n${tail}`, false);
  } finally {
    await agent.close().catch(() => undefined);
  }
}

export async function launch(spec: SpawnSpec): Promise<Server> {
  const fd = openSync(spec.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, { stdio: ['ignore', fd, fd], env: spec.env, cwd: dirname(spec.logPath) });
  } finally {
    closeSync(fd);
  }
  const exited = track(child);
  const pid = child.pid;
  const clientUrl = `http://127.0.0.1:${spec.clientPort}`;
  let finished = false;

  for (const d of spec.ownedDirs) liveDirs.add(d);
  const cleanup = async (): Promise<void> => {
    for (const d of spec.ownedDirs) {
      await rm(d, { recursive: true, force: true });
      liveDirs.delete(d);
    }
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (finished) return;
    finished = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      if (!(await waitExit(exited, STOP_GRACE_MS))) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    await cleanup();
  };
  const kill9 = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await cleanup();
  };

  try {
    if (pid === undefined) throw new StartError(`${spec.name}: spawn ${spec.command} failed`, false);
    await waitHealthy(clientUrl, spec.healthPath ?? '/health', exited, `${spec.name} (${spec.command} ${spec.args.join(' ')})`, spec.logPath);
  } catch (e) {
    await kill9();
    throw e;
  }
  return {
    name: spec.name,
    endpoint: `127.0.0.1:${spec.clientPort}`,
    clientUrl,
    peerUrl: spec.peerUrl,
    dataDir: spec.dataDir,
    logPath: spec.logPath,
    pid,
    exited,
    stop,
    kill9,
  };
}

/** Retries (fresh ports, fresh dirs) when a port picked by freePort() was taken in the meantime. */
async function withPortRetry(make: () => Promise<Server>): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await make();
    } catch (e) {
      if (!(e instanceof StartError && e.addrInUse && attempt < 3)) throw e;
    }
  }
}

export function cleanEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // ETCD_* and ETCDCTL_* from the caller's environment would silently change flags.
    if (k.startsWith('ETCD_') || k.startsWith('ETCDCTL_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * healthPath: what to poll for readiness. etcd 3.4 with --experimental-enable-v2v3 drops the
 * connection on /health and /version without an answer (seen with 3.4.23), so callers that start
 * it poll a v2 path such as /v2/keys/ instead.
 */
export function startRealEtcd(opts: { enableV2?: boolean; extraArgs?: string[]; healthPath?: string } = {}): Promise<Server> {
  return withPortRetry(async () => {
    const root = await mkdtemp(join(tmpdir(), 'etcd-real-'));
    const clientPort = await freePort();
    let peerPort = await freePort();
    while (peerPort === clientPort) peerPort = await freePort();
    const dataDir = join(root, 'data');
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const args = [
      '--name', 'default',
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`,
    ];
    if (opts.enableV2 ?? true) args.push('--enable-v2');
    args.push(...(opts.extraArgs ?? []));
    return launch({
      name: 'etcd',
      command: ETCD_BIN,
      args,
      env: cleanEnv(),
      clientPort,
      peerUrl,
      dataDir,
      logPath: join(root, 'etcd.log'),
      ownedDirs: [root],
      ...(opts.healthPath === undefined ? {} : { healthPath: opts.healthPath }),
    });
  });
}

function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${flag}` || a === `-${flag}`) return args[i + 1];
    for (const p of [`--${flag}=`, `-${flag}=`]) if (a.startsWith(p)) return a.slice(p.length);
  }
  return undefined;
}

export function startOurServer(opts: { dataDir?: string; extraArgs?: string[]; env?: Record<string, string> } = {}): Promise<Server> {
  if (!existsSync(OUR_MAIN)) return Promise.reject(new Error(`${OUR_MAIN} not found: build first (npx tsc -p .)`));
  return withPortRetry(async () => {
    const root = await mkdtemp(join(tmpdir(), 'etcd-ours-'));
    const dataDir = opts.dataDir ?? join(root, 'data');
    const clientPort = await freePort();
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    const extra = opts.extraArgs ?? [];
    const args = [
      ...ourNodeFlags(), OUR_MAIN,
      '--name', 'default',
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      ...extra,
    ];
    const peerUrl = flagValue(extra, 'initial-advertise-peer-urls') ?? opts.env?.ETCD_INITIAL_ADVERTISE_PEER_URLS ?? 'http://localhost:2380';
    return launch({
      name: 'ours',
      command: process.execPath,
      args,
      env: cleanEnv(opts.env),
      clientPort,
      peerUrl,
      dataDir,
      logPath: join(root, 'ours.log'),
      // A caller-supplied data dir survives stop() (restart tests reuse it); the log dir does not.
      ownedDirs: [root],
    });
  });
}

// ---------------------------------------------------------------------------------------------
// etcdctl

export interface EtcdctlResult {
  code: number;
  stdout: string;
  stderr: string;
  /** true when the harness had to stop etcdctl after timeoutMs (code is then usually 0 or 143). */
  timedOut: boolean;
}

export interface EtcdctlOptions {
  stdin?: string;
  env?: Record<string, string>;
  /** Default 10 s. On expiry SIGTERM (lock/elect then release their session), SIGKILL 3 s later. */
  timeoutMs?: number;
  /** Called with each stdout chunk as it arrives (for background commands). */
  onStdout?: (chunk: string) => void;
}

export function etcdctl(endpoint: string, args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const child = spawn(ETCDCTL_BIN, [`--endpoints=${endpoint}`, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cleanEnv({ ETCDCTL_API: '3', ...opts.env }),
  });
  const exited = track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => {
    stdout += c;
    opts.onStdout?.(c);
  });
  child.stderr!.on('data', (c: string) => {
    stderr += c;
  });
  child.stdin!.on('error', () => undefined); // EPIPE when etcdctl exits without reading stdin
  child.stdin!.end(opts.stdin ?? '');

  const stdoutDone = new Promise<void>((r) => child.stdout!.once('close', () => r()));
  const stderrDone = new Promise<void>((r) => child.stderr!.once('close', () => r()));

  return (async () => {
    let timedOut = false;
    if (!(await waitExit(exited, opts.timeoutMs ?? 10_000))) {
      timedOut = true;
      child.kill('SIGTERM');
      if (!(await waitExit(exited, 3_000))) child.kill('SIGKILL');
    }
    const e = await exited;
    await Promise.all([stdoutDone, stderrDone]);
    return { code: exitCodeOf(e), stdout, stderr, timedOut };
  })();
}

// ---------------------------------------------------------------------------------------------
// output normalization

export interface NormalizeContext {
  /** host:port client endpoints of this server -> <ENDPOINT> */
  endpoints?: string[];
  /** peer URLs of this server -> <PEER_URL> */
  peerUrls?: string[];
  memberId?: bigint;
  clusterId?: bigint;
  /** temp paths (longest first) -> <TMP> */
  paths?: string[];
  /** key prefixes followed by a hex lease ID (etcdctl lock/elect keys: "<name>/<lease %x>") */
  leaseKeyPrefixes?: string[];
  /** lease IDs the test typed itself (e.g. an unknown 0x1234): printed verbatim, never replaced */
  literalLeaseIds?: bigint[];
}

function nearTtl(remaining: string, granted: string): boolean {
  const r = Number(remaining);
  const g = Number(granted);
  return g > 0 && r >= 0 && r <= g && r >= g - 3;
}

const GO_DURATION = String.raw`(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))+`;
const HUMAN_SIZE = String.raw`\d+(?:\.\d+)? [kMGTPE]?B`;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Stateful normalizer for one server's etcdctl output. Keep one instance per server for the whole
 * life of that server: lease IDs and hashes are replaced by ordinals in order of first appearance
 * (<LEASE#1>, <HASH#1>, ...), so "the same lease printed twice" and "hash unchanged" survive
 * normalization and a server that prints a different ID where etcd repeats one still fails.
 *
 * Replaced, each only in the context where it occurs:
 * - this server's endpoint, peer URL, member ID and cluster ID (decimal and hex), temp paths
 * - lease IDs (text "lease <hex> granted/keepalived/revoked/already expired", `lease list`,
 *   JSON "ID"/"id"/"lease", fields "Lease"/"PrevLease", lock/elect keys) -> ordinals
 * - raft term (non-zero), raft index / applied index, DB sizes, KV hashes (ordinals)
 * - durations ("took"), log timestamps, client UUIDs in clientv3 warning lines
 * - `lease timetolive` remaining TTL when within 3 s of the granted TTL
 * - table column padding (tables are re-rendered as "| a | b |"; widths follow the values)
 * and `lease timetolive --keys` key lists are sorted (etcd builds them from a Go map: random order).
 * Revisions, versions, counts, values, keys, error texts, gRPC codes and exit codes are kept exact.
 */
export class Normalizer {
  private readonly leases = new Map<bigint, number>();
  private readonly leaseOrder: bigint[] = [];
  private readonly hashes = new Map<string, number>();

  constructor(readonly ctx: NormalizeContext = {}) {}

  /** Hex (as etcdctl wants it on the command line) of the lease that got ordinal n (1-based). */
  leaseHex(n: number): string {
    const id = this.leaseOrder[n - 1];
    if (id === undefined) throw new Error(`no lease #${n} seen yet (seen ${this.leaseOrder.length})`);
    return id.toString(16);
  }

  get leaseCount(): number {
    return this.leaseOrder.length;
  }

  private lease(id: bigint, original: string): string {
    if (this.ctx.literalLeaseIds?.includes(id)) return original;
    let n = this.leases.get(id);
    if (n === undefined) {
      this.leaseOrder.push(id);
      n = this.leaseOrder.length;
      this.leases.set(id, n);
    }
    return `<LEASE#${n}>`;
  }

  private hash(h: string): string {
    let n = this.hashes.get(h);
    if (n === undefined) {
      n = this.hashes.size + 1;
      this.hashes.set(h, n);
    }
    return `<HASH#${n}>`;
  }

  apply(text: string): string {
    let t = text;
    const c = this.ctx;

    // 1. paths, peer URLs, endpoints (exact strings of this server)
    for (const p of [...(c.paths ?? [])].sort((a, b) => b.length - a.length)) t = t.split(p).join('<TMP>');
    for (const u of c.peerUrls ?? []) t = t.replace(new RegExp(escapeRe(u) + String.raw`(?!\d)`, 'g'), '<PEER_URL>');
    for (const e of c.endpoints ?? []) t = t.replace(new RegExp(escapeRe(e) + String.raw`(?!\d)`, 'g'), '<ENDPOINT>');

    // 2. member / cluster IDs by value (only plausible 64-bit IDs, so a tiny bogus ID is not masked)
    const ids: Array<[bigint | undefined, string]> = [[c.memberId, '<MEMBER_ID>'], [c.clusterId, '<CLUSTER_ID>']];
    for (const [id, ph] of ids) {
      if (id === undefined || id < 1n << 32n) continue;
      t = t.replace(new RegExp(String.raw`\b(?:${id.toString(10)}|${id.toString(16)}|${id.toString(16).padStart(16, '0')})\b`, 'g'), ph);
    }

    // 3. lease IDs, in context
    t = t.replace(/\blease ([0-9a-f]{1,16}) (granted|keepalived|revoked|already expired)/g, (_m, hex: string, what: string) => `lease ${this.lease(BigInt('0x' + hex), hex)} ${what}`);
    t = t.replace(/^(found \d+ leases\n)((?:[0-9a-f]{1,16}\n)*)/gm, (_m, head: string, body: string) =>
      head + body.split('\n').map((l) => (l === '' ? l : this.lease(BigInt('0x' + l), l))).join('\n'));
    t = t.replace(/"(ID|id|lease)":(\d+)/g, (m, k: string, dec: string) => (dec === '0' ? m : `"${k}":${this.lease(BigInt(dec), dec)}`));
    t = t.replace(/"(Lease|PrevLease)" : (\d+)/g, (m, k: string, dec: string) => (dec === '0' ? m : `"${k}" : ${this.lease(BigInt(dec), dec)}`));
    for (const p of c.leaseKeyPrefixes ?? []) {
      t = t.replace(new RegExp(String.raw`(${escapeRe(p)})([0-9a-f]{1,16})\b`, 'g'), (_m, pre: string, hex: string) => pre + this.lease(BigInt('0x' + hex), hex));
    }

    // 4. lease remaining TTL (timing-dependent by up to a few seconds)
    t = t.replace(/granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/g, (m, g: string, r: string) =>
      nearTtl(r, g) ? `granted with TTL(${g}s), remaining(<~${g}>s)` : m);
    t = t.replace(/"ttl":(-?\d+),"granted-ttl":(\d+)/g, (m, r: string, g: string) =>
      nearTtl(r, g) ? `"ttl":<~${g}>,"granted-ttl":${g}` : m);
    // attached keys come from a Go map in etcd: their order is random there, so compare them sorted
    t = t.replace(/attached keys\(\[([^\]\n]*)\]\)/g, (_m, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`);
    t = t.replace(/"granted-ttl":(\d+),"keys":\[([^\]]*)\]/g, (_m, g: string, keys: string) => `"granted-ttl":${g},"keys":[${keys.split(',').sort().join(',')}]`);

    // 5. raft term / index, DB size
    t = t.replace(/"(raft_term|raftTerm)":([1-9]\d*)/g, '"$1":<TERM>');
    t = t.replace(/"RaftTerm" : ([1-9]\d*)/g, '"RaftTerm" : <TERM>');
    t = t.replace(/"(raftIndex|raftAppliedIndex)":(\d+)/g, '"$1":<RAFT_INDEX>');
    t = t.replace(/"(dbSize|dbSizeInUse)":(\d+)/g, '"$1":<SIZE>');
    // endpoint status (simple): ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX, RAFT APPLIED INDEX, ERRORS
    t = t.replace(
      new RegExp(String.raw`^([^,\n]+, [^,\n]+, [^,\n]*, )${HUMAN_SIZE}(, (?:true|false), (?:true|false), )\d+, \d+, \d+, `, 'gm'),
      '$1<SIZE>$2<TERM>, <RAFT_INDEX>, <RAFT_INDEX>, ');

    // 6. hashes (ordinal: equal hashes stay equal, different ones stay different)
    t = t.replace(/"hash":(\d+)/g, (_m, h: string) => `"hash":${this.hash(h)}`);
    t = t.replace(/^(<ENDPOINT>|[0-9.]+:\d+), (\d+)$/gm, (_m, ep: string, h: string) => `${ep}, ${this.hash(h)}`);

    // 7. durations, sizes and timestamps in health output and clientv3 / snapshot log lines
    t = t.replace(new RegExp(String.raw`took = ${GO_DURATION}`, 'g'), 'took = <DURATION>');
    t = t.replace(new RegExp(String.raw`"took":"${GO_DURATION}"`, 'g'), '"took":"<DURATION>"');
    t = t.replace(/"took":\d+(?:\.\d+)?(?:e-?\d+)?/g, '"took":<DURATION>');
    t = t.replace(new RegExp(String.raw`"size":"${HUMAN_SIZE}"`, 'g'), '"size":"<SIZE>"');
    t = t.replace(/"ts":"[0-9T:.\-+Z]+"/g, '"ts":"<TS>"');
    t = t.replace(/"ts":\d+(?:\.\d+)?(?:e[+-]?\d+)?/g, '"ts":<TS>');
    t = t.replace(/endpoint:\/\/client-[0-9a-f-]{36}\//g, 'endpoint://client-<UUID>/');

    // 8. tables: canonical "| a | b |" rows (column widths depend on the values), per-column values
    t = normalizeTables(t, (col, cell) => {
      switch (col) {
        case 'DB SIZE': return new RegExp(`^${HUMAN_SIZE}$`).test(cell) ? '<SIZE>' : cell;
        case 'RAFT TERM': return /^[1-9]\d*$/.test(cell) ? '<TERM>' : cell;
        case 'RAFT INDEX':
        case 'RAFT APPLIED INDEX': return /^\d+$/.test(cell) ? '<RAFT_INDEX>' : cell;
        case 'TOOK': return new RegExp(`^${GO_DURATION}$`).test(cell) ? '<DURATION>' : cell;
        case 'HASH': return /^\d+$/.test(cell) ? this.hash(cell) : cell;
        default: return cell;
      }
    });
    return t;
  }
}

/** Rewrites ASCII tables (tablewriter style) to padding-free rows, mapping cells by column header. */
function normalizeTables(text: string, cell: (column: string, value: string) => string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let header: string[] | undefined;
  for (const line of lines) {
    if (/^\+[-+]+\+$/.test(line)) {
      out.push('+--+');
      continue;
    }
    const m = /^\|(.*)\|$/.exec(line);
    if (m === null) {
      header = undefined;
      out.push(line);
      continue;
    }
    const cells = m[1]!.split('|').map((s) => s.trim());
    if (header === undefined) {
      header = cells;
      out.push(`| ${cells.join(' | ')} |`);
      continue;
    }
    const h = header;
    out.push(`| ${cells.map((v, i) => cell(h[i] ?? '', v)).join(' | ')} |`);
  }
  return out.join('\n');
}

/** Context-free normalization (fresh state): see Normalizer. */
export function normalize(text: string): string {
  return new Normalizer().apply(text);
}
