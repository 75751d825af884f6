// Differential compatibility test: the same etcdctl 3.4 command sequence is run against a fresh real
// etcd 3.4 and a fresh instance of our server, step by step in lock step (step i runs on both, both
// finish, then step i+1), and every step's normalized (exit code, stdout, stderr) must be equal.
//
// Both servers start at revision 1 and see the same writes, so revisions are compared exactly;
// only what must differ is normalized (see Normalizer in ../helpers/procs.ts).
//
// Scenarios share one pair of servers (distinct key prefixes); a scenario's args may use
//   {REV} {REV+n} {REV-n}  the store revision when the scenario started (per server)
//   {LEASE} {LEASE~n}      hex ID of the most recent (n-th before most recent) lease seen in output
//   {TMP}                  a scratch directory of that server's side
//
// Requires /usr/bin/etcd and /usr/bin/etcdctl (3.4.23) and a built server (dist/src/main.js).
// Development switch: ETCD_COMPAT_AGAINST=etcd runs the reference against a second real etcd,
// which must pass; it validates the normalizer. ETCD_COMPAT_VERBOSE=1 prints every step.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import {
  etcdctl, freePort, hasEtcd, makeTempDir, Normalizer, removeTempDir, startOurServer, startRealEtcd,
  type EtcdctlResult, type Server,
} from '../helpers/procs.js';

const AGAINST: 'etcd' | 'ours' = process.env.ETCD_COMPAT_AGAINST === 'etcd' ? 'etcd' : 'ours';
const VERBOSE = process.env.ETCD_COMPAT_VERBOSE === '1';

// ---------------------------------------------------------------------------------------------
// scenario model

interface RunStep {
  args: string[];
  stdin?: string;
  /** The command is expected to block (watch, lock holder, elect): stop it after this long. */
  timeoutMs?: number;
  /** Exit code the reference etcd must give (default 0 unless timeoutMs is set). */
  wantCode?: number;
  /** Start in the background under this name; compared when a later { join } step awaits it. */
  bg?: string;
  /** Extra check on each side's result (throw to fail). */
  verify?: (r: EtcdctlResult, side: Side) => Promise<void>;
}
interface JoinStep { join: string; wantCode?: number }
interface SleepStep { sleepMs: number }
interface WaitStep { waitFor: string; stdout: RegExp; timeoutMs?: number }
type Step = RunStep | JoinStep | SleepStep | WaitStep;

interface Scenario {
  name: string;
  steps: Step[];
}

const txnInput = (compares: string[], success: string[], failure: string[]): string =>
  [compares.join('\n'), success.join('\n'), failure.join('\n')].map((b) => (b === '' ? '' : b + '\n')).join('\n') + '\n';

const puts = (pairs: Array<[string, string]>): RunStep[] => pairs.map(([k, v]) => ({ args: ['put', k, v] }));

const sortSteps: RunStep[] = ['KEY', 'CREATE', 'MODIFY', 'VERSION', 'VALUE'].flatMap((by) =>
  ['ASCEND', 'DESCEND'].map((order) => ({ args: ['get', 'get/', '--prefix', `--sort-by=${by}`, `--order=${order}`] })));

const LEASE_KEY_PREFIXES = ['lk-lock/', 'el-e/'];

const scenarios: Scenario[] = [
  {
    name: 'put',
    steps: [
      { args: ['put', 'put/a', '1'] },
      { args: ['put', 'put/a', '2', '--prev-kv'] },
      { args: ['put', 'put/b', 'x', '-w', 'json'] },
      { args: ['put', 'put/a', '3', '--prev-kv', '-w', 'json'] },
      { args: ['put', 'put/a', '4', '--prev-kv', '-w', 'fields'] },
      { args: ['put', 'put/new', 'n', '--prev-kv'] },
      { args: ['put', 'put/s'], stdin: 'from stdin\nline 2\n' },
      { args: ['get', 'put/s', '-w', 'json'] },
      { args: ['lease', 'grant', '600'] },
      { args: ['put', 'put/l', 'v', '--lease={LEASE}'] },
      { args: ['get', 'put/l', '-w', 'json'] },
      { args: ['put', 'put/l', 'v2', '--ignore-lease'] },
      { args: ['put', 'put/l', '--ignore-value'] },
      { args: ['get', 'put/l', '-w', 'fields'] },
      { args: ['put', 'put/missing', '--ignore-value'], wantCode: 1 },
      { args: ['put', 'put/x', 'v', '--lease=1234'], wantCode: 1 },
      { args: ['put', '', 'v'], wantCode: 1 },
      { args: ['get', 'put/', '--prefix', '-w', 'json'] },
    ],
  },
  {
    name: 'get',
    steps: [
      ...puts([['get/b', '2'], ['get/a', '3'], ['get/c', '1'], ['get/a', '4'], ['get/d', '0'], ['get/b', '5'], ['get/b', '6']]),
      { args: ['get', 'get/a'] },
      { args: ['get', 'get/zz'] },
      { args: ['get', 'get/zz', '-w', 'json'] },
      { args: ['get', 'get/zz', '-w', 'fields'] },
      { args: ['get', 'get/', '--prefix'] },
      { args: ['get', 'get/b', '--from-key', '--limit=3'] },
      { args: ['get', 'get/a', 'get/c'] },
      { args: ['get', 'get/', '--prefix', '--limit=2'] },
      { args: ['get', 'get/', '--prefix', '--limit=2', '-w', 'json'] },
      ...sortSteps,
      { args: ['get', 'get/', '--prefix', '--order=DESCEND'] },
      { args: ['get', 'get/', '--prefix', '--sort-by=MODIFY', '--order=DESCEND', '--limit=2', '-w', 'json'] },
      { args: ['get', 'get/a', '--rev={REV+2}'] },
      { args: ['get', 'get/', '--prefix', '--rev={REV+3}', '-w', 'json'] },
      { args: ['get', 'get/', '--prefix', '--keys-only'] },
      { args: ['get', 'get/', '--prefix', '--keys-only', '-w', 'json'] },
      { args: ['get', 'get/', '--prefix', '--print-value-only'] },
      { args: ['get', 'get/', '--prefix', '-w', 'json'] },
      { args: ['get', 'get/b', '-w', 'fields'] },
      { args: ['get', 'get/a', '--hex'] },
      { args: ['get', 'get/', '--prefix', '--consistency=s'] },
      { args: ['get', 'get/a', '--rev=999999'], wantCode: 1 },
    ],
  },
  {
    name: 'del',
    steps: [
      ...puts([['zz-del/a', '1'], ['zz-del/b', '2'], ['zz-del/p/1', 'x'], ['zz-del/p/2', 'y'], ['zz-del/q', '3'], ['zz-del/r', '4']]),
      { args: ['del', 'zz-del/a'] },
      { args: ['del', 'zz-del/nope'] },
      { args: ['del', 'zz-del/b', '--prev-kv'] },
      { args: ['del', 'zz-del/p/', '--prefix', '--prev-kv', '-w', 'json'] },
      { args: ['del', 'zz-del/q', '--from-key'] },
      { args: ['del', 'zz-del/', '--prefix', '-w', 'json'] },
      { args: ['put', 'zz-del/s', '5'] },
      { args: ['del', 'zz-del/', '--prefix', '--prev-kv'] },
      { args: ['get', 'zz-del/', '--prefix', '-w', 'json'] },
    ],
  },
  {
    name: 'txn',
    steps: [
      ...puts([['tx/a', '1'], ['tx/b', 'x']]),
      // value compare succeeds
      { args: ['txn'], stdin: txnInput(['value("tx/a") = "1"'], ['put tx/a 2', 'get tx/b'], ['put tx/c fail']) },
      // same compare now fails -> failure branch
      { args: ['txn'], stdin: txnInput(['value("tx/a") = "1"'], ['put tx/a 3'], ['put tx/c fail', 'get tx/a']) },
      // version / create / mod compares, ops with flags
      {
        args: ['txn', '-w', 'json'],
        stdin: txnInput(['version("tx/a") = "2"', 'create("tx/b") > "0"', 'mod("tx/b") < "1000000"'],
          ['put tx/a 9 --prev-kv', 'del tx/c --prev-kv', 'get tx/ --prefix'], []),
      },
      { args: ['txn'], stdin: txnInput(['version("tx/a") > "5"'], ['put tx/never 1'], []) },
      { args: ['txn'], stdin: txnInput(['value("tx/a") != "9"'], ['put tx/never 1'], ['get tx/ --prefix --keys-only']) },
      { args: ['txn'], stdin: txnInput(['create("tx/nope") = "0"', 'mod("tx/a") > "0"'], ['put tx/new 1'], []) },
      { args: ['txn', '-w', 'fields'], stdin: txnInput(['value("tx/a") = "wrong"'], [], ['put tx/f 1', 'get tx/f']) },
      { args: ['txn', '-w', 'json'], stdin: txnInput([], ['del tx/ --prefix --prev-kv'], []) },
      { args: ['txn', '-i'], stdin: txnInput(['value("tx/a") = "1"'], ['put tx/i 1'], ['put tx/i 2']) },
      { args: ['txn'], stdin: txnInput([], ['put tx/d 1', 'put tx/d 2'], []), wantCode: 1 },
      { args: ['txn'], stdin: txnInput([], Array.from({ length: 129 }, (_, i) => `put tx/many${i} v`), []), wantCode: 1 },
      { args: ['txn'], stdin: txnInput(['bogus'], [], []), wantCode: 3 },
      { args: ['get', 'tx/', '--prefix', '-w', 'json'] },
    ],
  },
  {
    name: 'watch',
    steps: [
      // REV+1 .. REV+6
      ...puts([['wa/k1', 'a'], ['wa/k2', 'b'], ['wa/k1', 'c']]),
      { args: ['del', 'wa/k2'] },
      ...puts([['wa/k3', 'd'], ['wb/x', 'outside']]),
      { args: ['watch', '--prefix', 'wa/', '--rev={REV+1}'], timeoutMs: 1500 },
      { args: ['watch', '--prefix', 'wa/', '--rev={REV+2}', '--prev-kv'], timeoutMs: 1500 },
      { args: ['watch', '--prefix', 'wa/', '--rev={REV+1}', '-w', 'json'], timeoutMs: 1500 },
      { args: ['watch', 'wa/k1', '--rev={REV+1}', '--prev-kv', '-w', 'fields'], timeoutMs: 1500 },
      { args: ['watch', 'wa/k1', 'wa/k3', '--rev={REV+1}'], timeoutMs: 1500 },
      // live events (starting at REV+7 so the output does not depend on when the watch registered)
      { args: ['watch', '--prefix', 'wa/', '--prev-kv', '--rev={REV+7}'], timeoutMs: 2500, bg: 'live' },
      { sleepMs: 500 },
      { args: ['put', 'wa/k1', 'live'] },
      { args: ['del', 'wa/k3'] },
      { args: ['put', 'wa/k4', 'new'] },
      { join: 'live' },
    ],
  },
  {
    name: 'lease',
    steps: [
      // granted 60 s before 100 s: `lease list` order (by expiry) then differs from ID order
      { args: ['lease', 'grant', '60', '-w', 'json'] },
      { args: ['lease', 'grant', '100'] },
      { args: ['put', 'ls/a', 'v', '--lease={LEASE}'] },
      { args: ['put', 'ls/b', 'v', '--lease={LEASE}'] },
      { args: ['lease', 'timetolive', '{LEASE}'] },
      { args: ['lease', 'timetolive', '{LEASE}', '--keys'] },
      { args: ['lease', 'timetolive', '{LEASE}', '--keys', '-w', 'json'] },
      { args: ['lease', 'keep-alive', '--once', '{LEASE}'] },
      { args: ['lease', 'keep-alive', '--once', '{LEASE}', '-w', 'json'] },
      { args: ['lease', 'keep-alive', '{LEASE~1}'], timeoutMs: 1500 },
      { args: ['get', 'ls/a', '-w', 'json'] },
      { args: ['lease', 'list'] },
      { args: ['lease', 'list', '-w', 'json'] },
      { args: ['lease', 'revoke', '{LEASE}'] },
      { args: ['get', 'ls/', '--prefix', '-w', 'json'] },
      { args: ['lease', 'timetolive', '{LEASE}'] },
      { args: ['lease', 'timetolive', '{LEASE}', '--keys', '-w', 'json'] },
      { args: ['lease', 'revoke', '{LEASE~1}', '-w', 'json'] },
      { args: ['lease', 'revoke', '1234'], wantCode: 1 },
      { args: ['lease', 'keep-alive', '--once', '1234'], wantCode: 2 },
      { args: ['lease', 'timetolive', '1234'] },
      { args: ['lease', 'timetolive', '1234', '-w', 'json'] },
      { args: ['lease', 'list'] },
      // expiry: TTL 1 is raised to the minimum TTL (2 s with the default election timeout)
      { args: ['lease', 'grant', '1'] },
      { args: ['put', 'ls/e', 'v', '--lease={LEASE}'] },
      { args: ['lease', 'timetolive', '{LEASE}', '--keys'] },
      { sleepMs: 3500 },
      { args: ['get', 'ls/', '--prefix', '-w', 'json'] },
      { args: ['lease', 'timetolive', '{LEASE}'] },
      { args: ['lease', 'list'] },
    ],
  },
  {
    name: 'lock',
    steps: [
      { args: ['lock', 'lk-lock', 'echo', 'hi'] },
      { args: ['lock', '--ttl=5', 'lk-lock', 'echo', 'a', 'b'] },
      { args: ['lock', 'lk-lock'], timeoutMs: 2500, bg: 'holder' },
      { waitFor: 'holder', stdout: /^lk-lock\// },
      { args: ['get', 'lk-lock/', '--prefix', '-w', 'fields'] },
      // blocks until the holder is stopped (SIGTERM releases the lock)
      { args: ['lock', 'lk-lock', 'echo', 'second'] },
      { join: 'holder' },
      { args: ['get', 'lk-lock/', '--prefix', '-w', 'json'] },
      { args: ['lock', 'lk-lock', 'no-such-command-xyz'], wantCode: 1 },
      { args: ['get', 'lk-lock/', '--prefix', '-w', 'json'] },
    ],
  },
  {
    name: 'elect',
    steps: [
      { args: ['elect', '-l', 'el-e'], timeoutMs: 1200 },
      { args: ['elect', 'el-e', 'v1'], timeoutMs: 2500, bg: 'a' },
      { waitFor: 'a', stdout: /^v1$/m },
      { args: ['elect', '-l', 'el-e'], timeoutMs: 1200 },
      { args: ['get', 'el-e/', '--prefix', '-w', 'fields'] },
      { args: ['elect', 'el-e', 'v2'], timeoutMs: 4500, bg: 'b' },
      { join: 'a' },
      { waitFor: 'b', stdout: /^v2$/m },
      { args: ['elect', '-l', 'el-e'], timeoutMs: 1200 },
      { join: 'b' },
      { args: ['get', 'el-e/', '--prefix', '-w', 'json'] },
    ],
  },
  {
    name: 'maintenance',
    steps: [
      { args: ['endpoint', 'status'] },
      { args: ['endpoint', 'status', '-w', 'json'] },
      { args: ['endpoint', 'status', '-w', 'table'] },
      { args: ['endpoint', 'health'] },
      { args: ['endpoint', 'health', '-w', 'json'] },
      { args: ['endpoint', 'health', '-w', 'table'] },
      { args: ['endpoint', 'hashkv'] },
      { args: ['endpoint', 'hashkv', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '-w', 'table'] },
      { args: ['put', 'mt/x', '1'] },
      { args: ['endpoint', 'hashkv', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '--rev={REV}', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '--rev=99999999'], wantCode: 1 },
      { args: ['member', 'list'] },
      { args: ['member', 'list', '-w', 'json'] },
      { args: ['member', 'list', '-w', 'table'] },
      { args: ['alarm', 'list'] },
      { args: ['alarm', 'list', '-w', 'json'] },
      { args: ['defrag'] },
      { args: ['endpoint', 'status', '-w', 'json'] },
      {
        args: ['snapshot', 'save', '{TMP}/snap.db'],
        verify: async (_r, side) => {
          const st = await stat(join(side.tmp, 'snap.db'));
          assert.ok(st.size > 0, `snapshot file is empty`);
        },
      },
    ],
  },
  {
    name: 'errors-and-compaction',
    steps: [
      { args: ['put', '', 'v'], wantCode: 1 },
      { args: ['get', 'cp/a', '--rev=999999'], wantCode: 1 },
      { args: ['lease', 'revoke', '1234'], wantCode: 1 },
      { args: ['compaction', '0'] }, // nothing compacted yet on either server
      ...puts([['cp/a', '1'], ['cp/a', '2'], ['cp/a', '3']]), // REV+1 .. REV+3
      { args: ['compaction', '{REV+2}'] },
      { args: ['get', 'cp/a', '--rev={REV+1}'], wantCode: 1 },
      { args: ['get', 'cp/a', '--rev={REV+2}', '-w', 'json'] },
      { args: ['compaction', '{REV+1}'], wantCode: 1 },
      { args: ['compaction', '0'], wantCode: 1 },
      { args: ['endpoint', 'hashkv', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '--rev={REV+2}'], wantCode: 1 },
      { args: ['watch', 'cp/a', '--rev={REV+1}'], timeoutMs: 1500, wantCode: 5 },
      { args: ['watch', 'cp/a', '--rev={REV+2}'], timeoutMs: 1500 },
      { args: ['compaction', '--physical', '{REV+3}'] },
      { args: ['get', 'cp/', '--prefix', '-w', 'json'] },
      { args: ['compaction', '99999999'], wantCode: 1 },
      { args: ['endpoint', 'status', '-w', 'json'] },
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// runner

interface Background {
  stdout: string;
  result: Promise<EtcdctlResult>;
}

interface Side {
  label: string;
  server: Server;
  norm: Normalizer;
  /** scratch dir for files etcdctl writes (snapshots) */
  tmp: string;
  baseRev: number;
  bg: Map<string, Background>;
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

interface Mismatch {
  step: number;
  what: string;
  etcd?: Outcome;
  ours?: Outcome;
  rawEtcd?: EtcdctlResult;
  rawOurs?: EtcdctlResult;
  note?: string;
}

function expand(args: readonly string[], side: Side): string[] {
  return args.map((a) => a.replace(/\{(REV|LEASE|TMP)(?:([+~-])(\d+))?\}/g, (_m, name: string, op: string | undefined, n: string | undefined) => {
    const k = n === undefined ? 0 : Number(n);
    switch (name) {
      case 'REV': return String(op === '-' ? side.baseRev - k : side.baseRev + k);
      case 'LEASE': return side.norm.leaseHex(side.norm.leaseCount - k);
      default: return side.tmp;
    }
  }));
}

function normalized(r: EtcdctlResult, side: Side): Outcome {
  return { code: r.code, stdout: side.norm.apply(r.stdout), stderr: side.norm.apply(r.stderr) };
}

async function currentRevision(s: Server): Promise<number> {
  const r = await etcdctl(s.endpoint, ['get', 'compat-revision-probe', '-w', 'json']);
  const m = /"revision":(\d+)/.exec(r.stdout);
  if (m === null) throw new Error(`${s.name}: cannot read the revision (code ${r.code}): ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

async function serverIds(s: Server): Promise<{ memberId?: bigint; clusterId?: bigint }> {
  const r = await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json']);
  const member = /"member_id":(\d+)/.exec(r.stdout)?.[1];
  const cluster = /"cluster_id":(\d+)/.exec(r.stdout)?.[1];
  return {
    ...(member === undefined ? {} : { memberId: BigInt(member) }),
    ...(cluster === undefined ? {} : { clusterId: BigInt(cluster) }),
  };
}

async function makeSide(label: string, server: Server): Promise<Side> {
  const tmp = await makeTempDir(`etcdctl-compat-${label.replace(/\W/g, '')}-`);
  const ids = await serverIds(server);
  const norm = new Normalizer({
    endpoints: [server.endpoint],
    peerUrls: [server.peerUrl],
    paths: [tmp, server.dataDir],
    leaseKeyPrefixes: LEASE_KEY_PREFIXES,
    literalLeaseIds: [0x1234n],
    ...ids,
  });
  return { label, server, norm, tmp, baseRev: 0, bg: new Map() };
}

function lineDiff(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push(`    ${x[i]}`); i++; j++; }
    else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) { out.push(`  + ${y[j]}`); j++; }
    else { out.push(`  - ${x[i]}`); i++; }
  }
  return out.join('\n');
}

function formatMismatch(sc: Scenario, mm: Mismatch, otherLabel: string): string {
  const lines = [`--- scenario "${sc.name}", step ${mm.step}: ${mm.what}`];
  if (mm.note !== undefined) lines.push(`  ${mm.note}`);
  if (mm.etcd !== undefined && mm.ours !== undefined) {
    lines.push(`  exit code: etcd ${mm.etcd.code}, ${otherLabel} ${mm.ours.code}`);
    for (const k of ['stdout', 'stderr'] as const) {
      if (mm.etcd[k] === mm.ours[k]) continue;
      lines.push(`  ${k} (normalized; "-" etcd, "+" ${otherLabel}):`, lineDiff(mm.etcd[k], mm.ours[k]));
    }
  }
  if (mm.rawEtcd !== undefined) lines.push(`  raw etcd: ${JSON.stringify(mm.rawEtcd)}`);
  if (mm.rawOurs !== undefined) lines.push(`  raw ${otherLabel}: ${JSON.stringify(mm.rawOurs)}`);
  return lines.join('\n');
}

function describeStep(step: Step): string {
  if ('args' in step) return `${step.bg !== undefined ? `[bg ${step.bg}] ` : ''}etcdctl ${step.args.map((a) => (/^[\w./:=~{}+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}${step.stdin !== undefined ? ` <<< ${JSON.stringify(step.stdin.length > 200 ? step.stdin.slice(0, 200) + '...' : step.stdin)}` : ''}`;
  if ('join' in step) return `join background "${step.join}"`;
  if ('sleepMs' in step) return `sleep ${step.sleepMs} ms`;
  return `wait until background "${step.waitFor}" prints ${String(step.stdout)}`;
}

async function waitForOutput(side: Side, name: string, re: RegExp, timeoutMs: number): Promise<boolean> {
  const bg = side.bg.get(name);
  if (bg === undefined) throw new Error(`no background command "${name}"`);
  let done = false;
  void bg.result.then(() => { done = true; });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (re.test(bg.stdout)) return true;
    if (done) return re.test(bg.stdout);
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function runScenario(sc: Scenario, ref: Side, other: Side, log: (s: string) => void): Promise<void> {
  const mismatches: Mismatch[] = [];
  const [r0, o0] = await Promise.all([currentRevision(ref.server), currentRevision(other.server)]);
  ref.baseRev = r0;
  other.baseRev = o0;
  if (r0 !== o0) {
    mismatches.push({ step: -1, what: 'revision at scenario start', note: `etcd is at revision ${r0}, ${other.label} at ${o0} (an earlier scenario desynchronized them)` });
  }

  const compare = (i: number, step: Step, re: EtcdctlResult, ro: EtcdctlResult, wantCode: number | undefined): void => {
    const ne = normalized(re, ref);
    const no = normalized(ro, other);
    if (VERBOSE) log(`[${sc.name} #${i}] ${describeStep(step)}\n  etcd: ${JSON.stringify(ne)}\n  ${other.label}: ${JSON.stringify(no)}`);
    if (wantCode !== undefined && re.code !== wantCode) {
      mismatches.push({ step: i, what: describeStep(step), note: `reference etcd exited ${re.code}, the scenario expects ${wantCode} (scenario bug or etcd changed)`, rawEtcd: re });
    }
    if (!isDeepStrictEqual(ne, no)) mismatches.push({ step: i, what: describeStep(step), etcd: ne, ours: no, rawEtcd: re, rawOurs: ro });
  };

  const run = (side: Side, step: RunStep): Promise<EtcdctlResult> => {
    let args: string[];
    try {
      args = expand(step.args, side);
    } catch (e) {
      return Promise.resolve({ code: -1, stdout: '', stderr: `harness: cannot expand args: ${String(e)}`, timedOut: false });
    }
    const opts = {
      ...(step.stdin === undefined ? {} : { stdin: step.stdin }),
      ...(step.timeoutMs === undefined ? {} : { timeoutMs: step.timeoutMs }),
    };
    if (step.bg === undefined) return etcdctl(side.server.endpoint, args, opts);
    const bg: Background = { stdout: '', result: Promise.resolve({ code: -1, stdout: '', stderr: '', timedOut: false }) };
    bg.result = etcdctl(side.server.endpoint, args, { ...opts, onStdout: (c) => { bg.stdout += c; } });
    side.bg.set(step.bg, bg);
    return bg.result;
  };

  for (const [i, step] of sc.steps.entries()) {
    if ('sleepMs' in step) {
      await new Promise((r) => setTimeout(r, step.sleepMs));
    } else if ('waitFor' in step) {
      const [okE, okO] = await Promise.all([ref, other].map((s) => waitForOutput(s, step.waitFor, step.stdout, step.timeoutMs ?? 5000)));
      if (!okE) throw new Error(`scenario "${sc.name}" step ${i}: reference etcd background "${step.waitFor}" never printed ${String(step.stdout)} (stdout: ${JSON.stringify(ref.bg.get(step.waitFor)?.stdout)})`);
      if (!okO) mismatches.push({ step: i, what: describeStep(step), note: `${other.label}: background "${step.waitFor}" never printed ${String(step.stdout)}; stdout so far: ${JSON.stringify(other.bg.get(step.waitFor)?.stdout)}` });
    } else if ('join' in step) {
      const be = ref.bg.get(step.join);
      const bo = other.bg.get(step.join);
      if (be === undefined || bo === undefined) throw new Error(`scenario "${sc.name}" step ${i}: no background "${step.join}"`);
      const [re, ro] = await Promise.all([be.result, bo.result]);
      ref.bg.delete(step.join);
      other.bg.delete(step.join);
      compare(i, step, re, ro, step.wantCode);
    } else if (step.bg !== undefined) {
      // started on both; compared at its join step
      void run(ref, step);
      void run(other, step);
    } else {
      const [re, ro] = await Promise.all([run(ref, step), run(other, step)]);
      compare(i, step, re, ro, step.wantCode ?? (step.timeoutMs === undefined ? 0 : undefined));
      if (step.verify !== undefined) {
        for (const [side, r] of [[ref, re], [other, ro]] as const) {
          try {
            await step.verify(r, side);
          } catch (e) {
            mismatches.push({ step: i, what: describeStep(step), note: `check failed on ${side.label}: ${e instanceof Error ? e.message : String(e)}` });
          }
        }
      }
    }
  }
  // never leave background commands running into the next scenario
  for (const side of [ref, other]) {
    for (const [name, bg] of side.bg) {
      await bg.result;
      side.bg.delete(name);
      mismatches.push({ step: sc.steps.length, what: `background "${name}" was never joined (scenario bug)` });
    }
  }

  if (mismatches.length > 0) {
    const report = mismatches.map((m) => formatMismatch(sc, m, other.label)).join('\n\n');
    assert.fail(`etcdctl output differs between real etcd and ${other.label} in scenario "${sc.name}" (${mismatches.length} step(s)):\n\n${report}`);
  }
}

// ---------------------------------------------------------------------------------------------

describe(`etcdctl differential compatibility: real etcd vs ${AGAINST}`, {
  skip: hasEtcd() ? false : 'needs /usr/bin/etcd and /usr/bin/etcdctl (etcd 3.4.23); install etcd-server and etcd-client',
}, () => {
  let ref: Side | undefined;
  let other: Side | undefined;
  const servers: Server[] = [];

  before(async () => {
    const peer = `http://127.0.0.1:${await freePort()}`;
    const started = await Promise.allSettled([
      startRealEtcd(),
      AGAINST === 'etcd' ? startRealEtcd() : startOurServer({ extraArgs: ['--initial-advertise-peer-urls', peer] }),
    ]);
    for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    ref = await makeSide('etcd', servers[0]!);
    other = await makeSide(AGAINST === 'etcd' ? 'etcd#2' : 'ours', servers[1]!);
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const s of [ref, other]) if (s !== undefined) await removeTempDir(s.tmp);
  });

  for (const sc of scenarios) {
    test(sc.name, async (t) => {
      assert.ok(ref !== undefined && other !== undefined, 'servers did not start');
      const t0 = Date.now();
      await runScenario(sc, ref, other, (s) => t.diagnostic(s));
      t.diagnostic(`${sc.steps.length} steps in ${Date.now() - t0} ms`);
    });
  }
});
