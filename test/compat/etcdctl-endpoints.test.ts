// etcdctl given http:// and https:// endpoint URLs (issue 2). The commands that dial one endpoint
// directly (endpoint status/health/hashkv, their --cluster forms, snapshot save, move-leader) make
// grpc-go send the URL itself as the HTTP/2 :authority; Node's HTTP/2 server used to reset those
// streams (PROTOCOL_ERROR), and src/listener/authority.ts now drops the scheme. Each command runs
// against ours and a real etcd 3.4 and must succeed (or fail) alike, with the same JSON shape.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { etcdctl, hasEtcd, makeTempDir, removeTempDir, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';
import { parseJsonBig } from '../cluster/helpers.js';
import type { RunningServer } from '../../src/server.js';

/** The JSON's shape: keys and value types (64-bit IDs parse to strings: numbers either way). */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]));
  return typeof v === 'string' && /^\d{16,}$/.test(v) ? 'number' : typeof v;
}

/** etcdctl's JSON, after checking it exited 0. */
async function json(endpoint: string, args: string[]): Promise<unknown> {
  const r = await etcdctl(endpoint, [...args, '-w', 'json']);
  assert.equal(r.code, 0, `${endpoint} ${args.join(' ')}: ${r.stderr}`);
  return parseJsonBig(r.stdout);
}

const COMMANDS: string[][] = [
  ['endpoint', 'status'],
  ['endpoint', 'health'],
  ['endpoint', 'hashkv'],
  ['endpoint', 'status', '--cluster'],
  ['endpoint', 'health', '--cluster'],
  ['endpoint', 'hashkv', '--cluster'],
];

describe('etcdctl --endpoints http://host:port', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd' }, () => {
  let ours: Server | undefined;
  let real: Server | undefined;
  let dir: string;
  const both = (): [string, Server][] => [['etcd', real!], ['ours', ours!]];
  before(async () => {
    dir = await makeTempDir('etcdctl-endpoints-');
    [ours, real] = await Promise.all([startOurServer(), startRealEtcd()]);
    // The same history on both, so hashkv's fields (hash, compact_revision) are alike.
    for (const [, s] of both()) assert.equal((await etcdctl(s.endpoint, ['put', 'k', 'v'])).code, 0);
  });
  after(async () => {
    await Promise.all([ours?.stop(), real?.stop()]);
    if (dir !== undefined) await removeTempDir(dir);
  });

  for (const args of COMMANDS) {
    test(args.join(' '), async () => {
      const [theirs, mine] = await Promise.all(both().map(([, s]) => json(s.clientUrl, args)));
      assert.deepEqual(shape(mine), shape(theirs));
      const eps = (mine as { Endpoint?: string; endpoint?: string }[]).map((e) => e.Endpoint ?? e.endpoint);
      assert.deepEqual(eps, [ours!.clientUrl]);
    });
  }

  test('snapshot save', async () => {
    for (const [name, s] of both()) {
      const file = join(dir, `${name}.db`);
      const r = await etcdctl(s.clientUrl, ['snapshot', 'save', file]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stdout, `Snapshot saved at ${file}\n`);
      assert.ok((await stat(file)).size > 0);
    }
  });

  test('move-leader to a non-member: the same refusal', async () => {
    const out = await Promise.all(both().map(async ([, s]) => {
      const r = await etcdctl(s.clientUrl, ['move-leader', '1']);
      return `${r.code} ${r.stderr.split('\n').find((l) => l.startsWith('Error:'))}`;
    }));
    assert.equal(out[1], out[0]);
    assert.match(out[1]!, /^1 Error: /);
  });
});

describe('etcdctl --endpoints https://host:port', { skip: (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd and /usr/bin/openssl' }, () => {
  let dir: string;
  let ca: TestCa;
  let client: IssuedCert;
  let real: EtcdCluster | undefined;
  let ours: RunningServer | undefined;
  const tlsArgs = (): string[] => [`--cacert=${ca.ca}`, `--cert=${client.cert}`, `--key=${client.key}`];
  before(async () => {
    dir = await makeTempDir('etcdctl-endpoints-tls-');
    ca = makeCa(dir);
    const server = ca.server('server');
    client = ca.client('client', 'root');
    real = await startEtcdCluster(1, [], { cert: server.cert, key: server.key, ca: ca.ca });
    ours = await startServerWith(['--data-dir', `${dir}/ours`, '--listen-client-urls', 'https://127.0.0.1:0',
      '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.ca, '--client-cert-auth']);
    // A write on both first: fields that are zero on a fresh store are left out of the JSON.
    for (const ep of [real.members[0]!.tlsEndpoint!, `127.0.0.1:${ours.listeners[0]!.port}`]) {
      assert.equal((await etcdctl(ep, [...tlsArgs(), 'put', 'k', 'v'])).code, 0);
    }
  });
  after(async () => {
    await ours?.close();
    await real?.stop();
    if (dir !== undefined) await removeTempDir(dir);
  });

  for (const args of COMMANDS.filter((a) => !a.includes('--cluster'))) {
    test(args.join(' '), async () => {
      const urls = [`https://${real!.members[0]!.tlsEndpoint!}`, `https://127.0.0.1:${ours!.listeners[0]!.port}`];
      const [theirs, mine] = await Promise.all(urls.map((u) => json(u, [...tlsArgs(), ...args])));
      assert.deepEqual(shape(mine), shape(theirs));
      const eps = (mine as { Endpoint?: string; endpoint?: string }[]).map((e) => e.Endpoint ?? e.endpoint);
      assert.deepEqual(eps, [urls[1]]);
    });
  }

  test('put and get through an https:// endpoint', async () => {
    const url = `https://127.0.0.1:${ours!.listeners[0]!.port}`;
    assert.equal((await etcdctl(url, [...tlsArgs(), 'put', 'tls/k', 'v'])).stdout, 'OK\n');
    assert.equal((await etcdctl(url, [...tlsArgs(), 'get', 'tls/k'])).stdout, 'tls/k\nv\n');
  });
});

test('endpoint status of a fresh member (no write yet): the same fields as etcd, raftAppliedIndex included', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd' }, async () => {
  const [mine, theirs] = await Promise.all([startOurServer(), startRealEtcd()]);
  try {
    const [a, b] = await Promise.all([json(mine.clientUrl, ['endpoint', 'status']), json(theirs.clientUrl, ['endpoint', 'status'])]);
    assert.deepEqual(shape(a), shape(b));
    const st = (a as { Status: { raftIndex: number | string; raftAppliedIndex: number | string } }[])[0]!.Status;
    assert.equal(String(st.raftAppliedIndex), String(st.raftIndex));
  } finally {
    await Promise.all([mine.stop(), theirs.stop()]);
  }
});
