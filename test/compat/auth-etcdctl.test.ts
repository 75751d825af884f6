// Differential test of v3 auth: the same etcdctl 3.4 steps (users, roles, permissions on a key, a
// prefix, a range and from a key, auth enable, `--user` reads and writes allowed and denied, wrong
// passwords, listings, auth management errors, auth disable) run against a fresh real etcd 3.4 and
// a fresh instance of our server; every step's normalized (exit code, stdout, stderr) must be equal.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { etcdctl, freePort, hasEtcd, Normalizer, startOurServer, startRealEtcd, type EtcdctlResult, type Server } from '../helpers/procs.js';

const ROOT = ['--user', 'root:rootpw'];
const ALICE = ['--user', 'alice:alicepw'];

interface Step {
  readonly args: readonly string[];
  readonly stdin?: string;
}

const txn = (compares: string[], success: string[], failure: string[]): string =>
  [compares, success, failure].map((b) => (b.length === 0 ? '' : b.join('\n') + '\n')).join('\n') + '\n';

const steps: Step[] = [
  // auth off: management needs no token
  { args: ['auth', 'enable'] }, // no root user yet
  { args: ['user', 'add', 'root:rootpw'] },
  { args: ['user', 'add', 'root:again'] },
  { args: ['user', 'add', 'alice:alicepw'] },
  { args: ['user', 'add', 'nopw', '--no-password'] },
  { args: ['role', 'add', 'reader'] },
  { args: ['role', 'add', 'reader'] },
  { args: ['user', 'grant-role', 'alice', 'reader'] },
  { args: ['user', 'grant-role', 'alice', 'nosuch'] },
  { args: ['user', 'grant-role', 'bob', 'reader'] },
  { args: ['role', 'grant-permission', 'reader', 'read', 'a'] },
  { args: ['role', 'grant-permission', 'reader', 'read', '--prefix', 'p/'] },
  { args: ['role', 'grant-permission', 'reader', 'readwrite', 'c', 'e'] },
  { args: ['role', 'grant-permission', 'reader', 'write', '--from-key', 'z'] },
  { args: ['role', 'grant-permission', 'reader', 'readwrite', 'a'] }, // replaces the READ on a
  { args: ['role', 'grant-permission', 'reader', 'read', 'a'] },
  { args: ['role', 'grant-permission', 'nosuch', 'read', 'a'] },
  { args: ['role', 'get', 'reader'] },
  { args: ['role', 'get', 'reader', '-w', 'json'] },
  { args: ['role', 'get', 'nosuch'] },
  { args: ['role', 'list'] },
  { args: ['user', 'list', '-w', 'json'] },
  { args: ['user', 'get', 'alice'] },
  { args: ['user', 'get', 'alice', '--detail'] },
  { args: ['user', 'get', 'nobody'] },
  { args: ['put', 'a', '1'] },
  { args: ['put', 'p/x', '2'] },
  { args: ['put', 'c1', '3'] },
  { args: ['put', 'q', '4'] },
  // etcdctl adds the root role and grants it when AuthEnable says root lacks it
  { args: ['auth', 'enable'] },
  { args: ['auth', 'enable'] }, // enabled already, and no token
  { args: ['role', 'list', ...ROOT] },
  { args: ['get', 'a'] },
  { args: ['put', 'a', 'x'] },
  { args: ['get', 'a', ...ROOT, '-w', 'json'] },
  { args: ['put', 'a', '5', ...ROOT] },
  { args: ['get', 'a', ...ALICE] },
  { args: ['get', 'p/', '--prefix', ...ALICE] },
  { args: ['get', 'p/x', ...ALICE, '-w', 'json'] },
  { args: ['get', 'c', 'd', ...ALICE] },
  { args: ['get', 'c1', ...ALICE] },
  { args: ['get', 'q', ...ALICE] },
  { args: ['get', 'c', 'f', ...ALICE] },
  { args: ['get', '', '--from-key', ...ALICE] },
  { args: ['put', 'a', 'no', ...ALICE] },
  { args: ['put', 'p/y', 'no', ...ALICE] },
  { args: ['put', 'c2', 'yes', ...ALICE] },
  { args: ['put', 'zz', 'yes', ...ALICE] },
  { args: ['get', 'zz', ...ALICE] },
  { args: ['del', 'c2', ...ALICE] },
  { args: ['del', 'c', 'e', ...ALICE] },
  { args: ['del', 'a', ...ALICE] },
  { args: ['txn', ...ALICE], stdin: txn(['value("a") = "5"'], ['put c3 t'], ['get a']) },
  { args: ['txn', ...ALICE], stdin: txn(['value("a") = "5"'], ['put a t'], []) },
  { args: ['txn', ...ALICE], stdin: txn(['value("q") = "4"'], ['put c3 t'], []) },
  { args: ['get', 'a', '--user', 'alice:wrong'] },
  { args: ['get', 'a', '--user', 'nobody:x'] },
  { args: ['get', 'a', '--user', 'nopw:'] },
  { args: ['user', 'list', ...ALICE] },
  { args: ['user', 'get', 'alice', ...ALICE] },
  { args: ['user', 'get', 'root', ...ALICE] },
  { args: ['role', 'get', 'reader', ...ALICE] },
  { args: ['role', 'get', 'root', ...ALICE] },
  { args: ['role', 'add', 'x', ...ALICE] },
  { args: ['user', 'delete', 'root', ...ROOT] },
  { args: ['user', 'revoke-role', 'root', 'root', ...ROOT] },
  { args: ['role', 'delete', 'root', ...ROOT] },
  { args: ['role', 'get', 'root', ...ROOT] },
  { args: ['role', 'revoke-permission', 'reader', 'a', ...ROOT] },
  { args: ['role', 'revoke-permission', 'reader', 'nope', ...ROOT] },
  { args: ['role', 'revoke-permission', 'reader', 'p/', '--prefix', ...ROOT] },
  { args: ['role', 'get', 'reader', ...ROOT] },
  { args: ['get', 'p/x', ...ALICE] },
  { args: ['user', 'revoke-role', 'alice', 'reader', ...ROOT] },
  { args: ['user', 'revoke-role', 'alice', 'reader', ...ROOT] },
  { args: ['get', 'c1', ...ALICE] },
  { args: ['user', 'grant-role', 'alice', 'reader', ...ROOT] },
  { args: ['role', 'delete', 'reader', ...ROOT] },
  { args: ['user', 'get', 'alice', ...ROOT] },
  { args: ['user', 'delete', 'nopw', ...ROOT] },
  { args: ['user', 'list', ...ROOT] },
  { args: ['auth', 'disable', ...ALICE] },
  { args: ['auth', 'disable', ...ROOT] },
  { args: ['get', 'a'] },
  { args: ['user', 'list'] },
  { args: ['user', 'delete', 'root'] },
  { args: ['role', 'delete', 'root'] },
  { args: ['role', 'list'] },
  // the root role can be granted without being added, and is then no listed role
  { args: ['user', 'add', 'root:pw2'] },
  { args: ['user', 'grant-role', 'root', 'root'] },
  { args: ['role', 'list'] },
  { args: ['role', 'get', 'root'] },
  { args: ['user', 'get', 'root'] },
];

interface Side {
  readonly server: Server;
  readonly norm: Normalizer;
}

async function makeSide(server: Server): Promise<Side> {
  const r = await etcdctl(server.endpoint, ['endpoint', 'status', '-w', 'json']);
  const member = /"member_id":(\d+)/.exec(r.stdout)?.[1];
  const cluster = /"cluster_id":(\d+)/.exec(r.stdout)?.[1];
  return {
    server,
    norm: new Normalizer({
      endpoints: [server.endpoint],
      peerUrls: [server.peerUrl],
      paths: [server.dataDir],
      ...(member === undefined ? {} : { memberId: BigInt(member) }),
      ...(cluster === undefined ? {} : { clusterId: BigInt(cluster) }),
    }),
  };
}

/** clientv3 logs each failed attempt as a JSON warning line; keep only its error text. */
function normalized(side: Side, r: EtcdctlResult): { code: number; stdout: string; stderr: string } {
  const stderr = r.stderr.split('\n').map((l) => {
    const m = /^\{"level":"warn".*"error":("(?:[^"\\]|\\.)*")\}$/.exec(l);
    return m === null ? l : `warn: ${JSON.parse(m[1]!) as string}`;
  }).join('\n');
  return { code: r.code, stdout: side.norm.apply(r.stdout), stderr: side.norm.apply(stderr) };
}

describe('etcdctl auth: our server against etcd 3.4', {
  skip: hasEtcd() ? false : 'needs /usr/bin/etcd and /usr/bin/etcdctl (etcd 3.4.23)',
}, () => {
  const servers: Server[] = [];
  let ref: Side | undefined;
  let ours: Side | undefined;

  before(async () => {
    const peer = `http://127.0.0.1:${await freePort()}`;
    const started = await Promise.allSettled([startRealEtcd(), startOurServer({ extraArgs: ['--initial-advertise-peer-urls', peer] })]);
    for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    ref = await makeSide(servers[0]!);
    ours = await makeSide(servers[1]!);
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test(`${steps.length} steps give the same output`, async (t) => {
    assert.ok(ref !== undefined && ours !== undefined, 'servers did not start');
    const mismatches: string[] = [];
    for (const [i, step] of steps.entries()) {
      const opts = step.stdin === undefined ? {} : { stdin: step.stdin };
      const [re, ro] = await Promise.all([etcdctl(ref.server.endpoint, [...step.args], opts), etcdctl(ours.server.endpoint, [...step.args], opts)]);
      const ne = normalized(ref, re);
      const no = normalized(ours, ro);
      if (process.env.ETCD_COMPAT_VERBOSE === '1') t.diagnostic(`step ${i}: etcdctl ${step.args.join(' ')}\n  ${JSON.stringify(no)}`);
      if (!isDeepStrictEqual(ne, no)) {
        mismatches.push(`step ${i}: etcdctl ${step.args.join(' ')}\n  etcd: ${JSON.stringify(ne)}\n  ours: ${JSON.stringify(no)}`);
      }
    }
    t.diagnostic(`${steps.length} steps, ${mismatches.length} mismatches`);
    assert.deepEqual(mismatches, []);
  });
});
