// The client certificate's CN as the gRPC caller on both ways a connection reaches grpc-js
// (src/listener/rewrite-stream.ts): handed over as it is (etcdctl, grpc-js: the CN comes from the
// TLS socket) and through the authority rewriter (an :authority with a scheme: the CN comes from
// the header the listener adds). etcdctl 3.4 over TLS names the server in :authority even for an
// https:// endpoint, so the rewritten case is made by hand with node:http2. And a client that
// forges the CN header, on a plain connection handed over as it is, is nobody.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { KVClient, PutRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { CLIENT_CN_HEADER } from '../../src/listener/client-cn.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { etcdctl, hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';
import type { RunningServer } from '../../src/server.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd, /usr/bin/etcdctl and /usr/bin/openssl';

let dir: string;
let ca: TestCa;
let root: IssuedCert;
let alice: IssuedCert;
let real: EtcdCluster;
let ours: RunningServer;
let serverCert: IssuedCert;

before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('tls-cn-handover-');
  ca = makeCa(dir);
  const server = ca.server('server');
  serverCert = server;
  root = ca.client('root', 'root');
  alice = ca.client('alice', 'alice');
  real = await startEtcdCluster(1, [], { cert: server.cert, key: server.key, ca: ca.ca });
  ours = await startServerWith(['--data-dir', `${dir}/ours`, '--listen-client-urls', 'https://127.0.0.1:0',
    '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.ca, '--client-cert-auth']);
});
after(async () => {
  await ours?.close();
  await real?.stop();
  if (dir !== undefined) await removeTempDir(dir);
});

/** etcdctl's stdout with endpoints, IDs and hashes (X) and other numbers blanked, or its "Error: ..." line. */
async function outcome(ep: string, cert: IssuedCert, args: string[]): Promise<string> {
  const r = await etcdctl(ep, [`--cacert=${ca.ca}`, `--cert=${cert.cert}`, `--key=${cert.key}`, '--dial-timeout=2s', '--command-timeout=3s', ...args], { timeoutMs: 15_000 });
  if (r.code !== 0) return r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? `exit ${r.code}: ${r.stderr}`;
  return r.stdout.replace(/(127\.0\.0\.1|localhost):\d+/g, 'EP').replace(/\b[0-9a-f]{5,}\b/g, 'X').replace(/\d+/g, 'N');
}

test('auth on: etcdctl\'s certificate CN is the caller, by host:port and by https:// endpoint, as etcd', { skip }, async () => {
  const results: string[][] = [];
  for (const hostPort of [`127.0.0.1:${ours.listeners[0]!.port}`, real.members[0]!.tlsEndpoint!]) {
    const url = `https://${hostPort}`;
    const seen: string[] = [];
    seen.push(await outcome(hostPort, root, ['user', 'add', 'root:rootpw']));
    seen.push(await outcome(hostPort, root, ['auth', 'enable']));
    seen.push(await outcome(hostPort, root, ['put', 'k', 'v']));
    // HashKV is admin-only: root's certificate passes, alice's (no such user) does not.
    for (const ep of [hostPort, url]) {
      seen.push(await outcome(ep, root, ['endpoint', 'hashkv']));
      seen.push(await outcome(ep, alice, ['endpoint', 'hashkv']));
      seen.push(await outcome(ep, root, ['endpoint', 'status']));
    }
    seen.push(await outcome(url, root, ['auth', 'disable']));
    results.push(seen);
  }
  const [oursSeen, realSeen] = results;
  assert.deepEqual(oursSeen, realSeen);
  assert.equal(oursSeen![6], 'https://EP, X\n'); // root over https://: the hash
  // alice is alice (no such user), not nobody ("user name is empty").
  assert.equal(oursSeen![7], 'Error: rpc error: code = Unknown desc = auth: user not found');
});

/** A KV Put by hand on node:http2 with this :authority and client certificate: grpc-status and -message. */
async function h2Put(port: number, authority: string, cert: IssuedCert, forged?: string): Promise<string> {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ca: readFileSync(ca.ca), cert: readFileSync(cert.cert), key: readFileSync(cert.key), ALPNProtocols: ['h2'], servername: 'localhost',
  });
  try {
    const msg = Buffer.from(PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('h2/k'), value: Buffer.from('v') })).finish());
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]);
    frame.writeUInt32BE(msg.length, 1);
    const req = session.request({
      ':method': 'POST', ':path': '/etcdserverpb.KV/Put', ':authority': authority, 'content-type': 'application/grpc', te: 'trailers',
      ...(forged !== undefined ? { [CLIENT_CN_HEADER]: forged } : {}),
    });
    req.end(frame);
    req.resume();
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.once('trailers', resolve);
      req.once('error', reject);
      // A trailers-only answer (an error) comes as the response headers.
      req.once('response', (h) => { if (h['grpc-status'] !== undefined) resolve(h); });
    });
    return `${headers['grpc-status']} ${decodeURIComponent(String(headers['grpc-message'] ?? ''))}`;
  } finally {
    session.close();
  }
}

test('auth on: a call whose :authority needs the rewrite has its certificate CN as the caller, a forged one dropped', { skip }, async () => {
  const s = await startServerWith(['--data-dir', `${dir}/h2`, '--listen-client-urls', 'https://127.0.0.1:0',
    '--cert-file', serverCert.cert, '--key-file', serverCert.key, '--trusted-ca-file', ca.ca, '--client-cert-auth']);
  const port = s.listeners[0]!.port;
  const ctl = (args: string[]): Promise<string> => outcome(`127.0.0.1:${port}`, root, args);
  try {
    assert.equal(await ctl(['user', 'add', 'root:rootpw']), 'User root created\n');
    assert.equal(await ctl(['auth', 'enable']), 'Authentication Enabled\n');
    const seen: string[] = [];
    for (const authority of [`127.0.0.1:${port}`, `https://127.0.0.1:${port}`]) {
      seen.push(await h2Put(port, authority, root));
      seen.push(await h2Put(port, authority, alice, 'root'));
    }
    // The same answers either way: root writes; alice (no such user) is refused even claiming root.
    assert.deepEqual(seen, ['0 ', '7 etcdserver: permission denied', '0 ', '7 etcdserver: permission denied']); // OK's grpc-message is empty, as etcd's
  } finally {
    await s.close();
  }
});

test('a plain client forging the CN header in the listener\'s own format is still nobody', { skip }, async () => {
  const s = await startServerWith(['--data-dir', `${dir}/forge`]);
  const ep = `127.0.0.1:${s.listeners[0]!.port}`;
  const kv = new KVClient(ep, grpc.credentials.createInsecure());
  try {
    for (const args of [['user', 'add', 'root:rootpw'], ['auth', 'enable']]) assert.equal((await etcdctl(ep, args)).code, 0);
    // The listener's value is "<32 hex key> <CN>": a guessed key, a bare CN, both on one call.
    for (const values of [[`${'a'.repeat(32)} root`], ['root'], [`${'0'.repeat(32)} root`, 'root']]) {
      const md = new grpc.Metadata();
      for (const v of values) md.add(CLIENT_CN_HEADER, v);
      const err = await new Promise<grpc.ServiceError | null>((resolve) => kv.put(PutRequest.fromPartial({ key: Buffer.from('forged'), value: Buffer.from('x') }), md, (e) => resolve(e)));
      assert.equal(err?.details, 'etcdserver: user name is empty', JSON.stringify(values));
    }
  } finally {
    kv.close();
    await s.close();
  }
});
