// TLS on the client port: gRPC (etcdctl) and HTTP/1.1 (v2, gateway, /health) on one https port,
// client certificates required with --client-cert-auth, and the certificate's Common Name as the
// gRPC caller when auth is on. Compared with a real etcd 3.4 given the same certificates.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Agent, request } from 'undici';
import { KVClient, PutRequest, RangeRequest, type RangeResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { loadConfig } from '../../src/config/index.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { etcdctl, hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';
import type { RunningServer } from '../../src/server.js';
import { CLIENT_CN_HEADER } from '../../src/listener/authority.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd, /usr/bin/etcdctl and /usr/bin/openssl';
const run = promisify(execFile);

let dir: string;
let ca: TestCa;
let server: IssuedCert;
let root: IssuedCert;
let alice: IssuedCert;
/** Signed by another CA: a certificate the servers do not trust. */
let stranger: IssuedCert;
let real: EtcdCluster;
let ours: RunningServer;
let oursEp: string;

before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('tls-client-');
  ca = makeCa(dir);
  server = ca.server('server');
  root = ca.client('root', 'root');
  alice = ca.client('alice', 'alice');
  stranger = makeCa(dir, 'other-ca').client('stranger', 'root');
  real = await startEtcdCluster(1, [], { cert: server.cert, key: server.key, ca: ca.ca });
  ours = await startServerWith(['--data-dir', `${dir}/ours`, '--listen-client-urls', 'https://127.0.0.1:0',
    '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.ca, '--client-cert-auth']);
  oursEp = `127.0.0.1:${ours.listeners[0]!.port}`;
});
after(async () => {
  await ours?.close();
  await real?.stop();
  if (dir !== undefined) await removeTempDir(dir);
});

/** Both servers' TLS endpoints, ours first. */
const endpoints = (): [string, string] => [oursEp, real.members[0]!.tlsEndpoint!];

function ctl(ep: string, cert: IssuedCert | undefined, args: string[]): ReturnType<typeof etcdctl> {
  const tlsArgs = [`--cacert=${ca.ca}`, ...(cert !== undefined ? [`--cert=${cert.cert}`, `--key=${cert.key}`] : [])];
  return etcdctl(ep, [...tlsArgs, '--dial-timeout=2s', '--command-timeout=3s', ...args], { timeoutMs: 15_000 });
}

/** What etcdctl printed: stdout, or its "Error: ..." line (the retry warnings before it vary). */
async function outcome(ep: string, cert: IssuedCert | undefined, args: string[]): Promise<string> {
  const r = await ctl(ep, cert, args);
  if (r.code === 0) return r.stdout;
  return r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? `exit ${r.code}: ${r.stderr}`;
}

function agent(cert: IssuedCert | undefined): Agent {
  return new Agent({ connect: { ca: readFileSync(ca.ca), ...(cert !== undefined ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } });
}

test('etcdctl talks gRPC over TLS with a client certificate, as to etcd', { skip }, async () => {
  for (const ep of endpoints()) {
    assert.equal(await outcome(ep, root, ['put', 'tls/k', 'v1']), 'OK\n', ep);
    assert.equal(await outcome(ep, root, ['get', 'tls/k']), 'tls/k\nv1\n', ep);
  }
});

test('a grpc-js client (npm etcd3\'s transport) over TLS with a client certificate', { skip }, async () => {
  const creds = grpc.credentials.createSsl(readFileSync(ca.ca), readFileSync(root.key), readFileSync(root.cert));
  const kv = new KVClient(oursEp, creds);
  try {
    await new Promise<void>((resolve, reject) => kv.put(PutRequest.fromPartial({ key: Buffer.from('tls/js'), value: Buffer.from('grpc-js') }), (e) => (e ? reject(e) : resolve())));
    const r = await new Promise<RangeResponse>((resolve, reject) => kv.range(RangeRequest.fromPartial({ key: Buffer.from('tls/js') }), (e, res) => (e ? reject(e) : resolve(res))));
    assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'grpc-js');
  } finally {
    kv.close();
  }
});

test('HTTP/1.1 on the same TLS port: v2 keys, the v3 gateway, /health', { skip }, async () => {
  const a = agent(root);
  try {
    const base = `https://${oursEp}`;
    const v2 = await request(`${base}/v2/keys/tls-v2`, { method: 'PUT', body: 'value=yes', headers: { 'content-type': 'application/x-www-form-urlencoded' }, dispatcher: a });
    assert.equal(v2.statusCode, 201);
    assert.equal(((await v2.body.json()) as { node: { value: string } }).node.value, 'yes');
    const gw = await request(`${base}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('tls/k').toString('base64') }), dispatcher: a });
    assert.equal(gw.statusCode, 200);
    const kv = ((await gw.body.json()) as { kvs: { value: string }[] }).kvs[0]!;
    assert.equal(Buffer.from(kv.value, 'base64').toString(), 'v1');
    const health = await request(`${base}/health`, { dispatcher: a });
    assert.equal(health.statusCode, 200);
    assert.equal(((await health.body.json()) as { health: string }).health, 'true');
  } finally {
    await a.close();
  }
  // curl offers h2 and http/1.1 by ALPN: the port picks http/1.1 for it (gRPC clients offer h2 alone).
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_version}', '--cacert', ca.ca, '--cert', root.cert, '--key', root.key, `https://${oursEp}/v2/keys/tls-v2`]);
  const cut = stdout.lastIndexOf('\n');
  const [body, version] = [stdout.slice(0, cut), stdout.slice(cut + 1)];
  assert.equal((JSON.parse(body) as { node: { value: string } }).node.value, 'yes');
  assert.equal(version, '1.1');
});

test('with --client-cert-auth, no certificate or an untrusted one is refused at the handshake', { skip }, async () => {
  for (const ep of endpoints()) {
    for (const cert of [undefined, stranger]) {
      const r = await ctl(ep, cert, ['get', 'tls/k']);
      assert.notEqual(r.code, 0, `${ep} ${cert?.cert ?? 'no cert'}`);
      assert.match(r.stderr, /context deadline exceeded/);
    }
  }
  for (const cert of [undefined, stranger]) {
    const a = agent(cert);
    try {
      await assert.rejects(async () => {
        const r = await request(`https://${oursEp}/health`, { dispatcher: a });
        await r.body.text();
      });
    } finally {
      await a.close();
    }
  }
});

test('auth on: the certificate CN is the gRPC caller (as etcd), the gateway refuses CN requests (as etcd)', { skip }, async () => {
  const results: string[][] = [];
  for (const ep of endpoints()) {
    const seen: string[] = [];
    // No --user anywhere: each call runs as its certificate's CN once auth is on.
    seen.push(await outcome(ep, root, ['user', 'add', 'root:rootpw']));
    seen.push(await outcome(ep, root, ['user', 'add', 'bob:bobpw']));
    seen.push(await outcome(ep, root, ['auth', 'enable']));
    seen.push(await outcome(ep, root, ['put', 'tls/auth', 'by-root']));
    seen.push(await outcome(ep, root, ['get', 'tls/auth']));
    seen.push(await outcome(ep, alice, ['get', 'tls/auth'])); // alice is no user
    seen.push(await outcome(ep, alice, ['user', 'list']));
    seen.push(await outcome(ep, root, ['user', 'list']));
    // A token beats the certificate: bob has no role.
    seen.push(await outcome(ep, root, ['--user', 'bob:bobpw', 'get', 'tls/auth']));
    const a = agent(root);
    try {
      const r = await request(`https://${ep}/v3/kv/range`, { method: 'POST', body: '{"key":"YQ=="}', dispatcher: a });
      seen.push(`${r.statusCode} ${r.headers['content-type']} ${await r.body.text()}`);
    } finally {
      await a.close();
    }
    seen.push(await outcome(ep, root, ['auth', 'disable']));
    results.push(seen);
  }
  const [oursSeen, realSeen] = results;
  assert.deepEqual(oursSeen, realSeen);
  assert.equal(oursSeen![4], 'tls/auth\nby-root\n');
  assert.equal(oursSeen![5], 'Error: etcdserver: permission denied');
  assert.match(oursSeen![9]!, /^400 text\/plain; charset=utf-8 CommonName of client sending a request against gateway will be ignored/);
});

test('http:// and https:// listeners side by side; without --client-cert-auth no client certificate is asked', { skip }, async () => {
  const s = await startServerWith(['--data-dir', `${dir}/mixed`, '--listen-client-urls', 'http://127.0.0.1:0,https://127.0.0.1:0',
    '--cert-file', server.cert, '--key-file', server.key]);
  try {
    const [plain, secure] = s.listeners.map((l) => `127.0.0.1:${l.port}`);
    assert.equal(await outcome(secure!, undefined, ['put', 'both', 'ways']), 'OK\n');
    assert.equal((await etcdctl(plain!, ['get', 'both', '--print-value-only'])).stdout, 'ways\n');
    const a = agent(undefined);
    try {
      const r = await request(`https://${secure}/v2/keys/both-v2`, { method: 'PUT', body: 'value=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, dispatcher: a });
      assert.equal(r.statusCode, 201);
      await r.body.dump();
    } finally {
      await a.close();
    }
    // Plain HTTP to the TLS port is not served.
    await assert.rejects(fetch(`http://${secure}/health`));
  } finally {
    await s.close();
  }
});

test('an https:// client URL needs --cert-file and --key-file (etcd 3.4\'s error)', () => {
  assert.throws(() => loadConfig(['--listen-client-urls', 'https://127.0.0.1:2379'], {}),
    { message: 'TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme' });
  assert.throws(() => loadConfig(['--client-cert-auth=maybe'], {}), /invalid boolean value "maybe" for -client-cert-auth/);
  const r = loadConfig(['--listen-client-urls', 'https://127.0.0.1:2379', '--cert-file', 'c.pem', '--key-file', 'k.pem', '--client-cert-auth'], {});
  assert.ok(r.kind === 'run');
  assert.deepEqual(r.config.clientTls, { certFile: 'c.pem', keyFile: 'k.pem', trustedCaFile: '', clientCertAuth: true, allowedHostname: '', crlFile: '', ciphers: undefined, selfCert: undefined });
});

test('a client cannot claim a certificate CN by sending the listener\'s CN header', { skip }, async () => {
  const s = await startServerWith(['--data-dir', `${dir}/spoof`]);
  const ep = `127.0.0.1:${s.listeners[0]!.port}`;
  const kv = new KVClient(ep, grpc.credentials.createInsecure());
  try {
    for (const args of [['user', 'add', 'root:rootpw'], ['auth', 'enable']]) assert.equal((await etcdctl(ep, args)).code, 0);
    const md = new grpc.Metadata();
    md.set(CLIENT_CN_HEADER, 'root');
    const err = await new Promise<grpc.ServiceError | null>((resolve) => kv.put(PutRequest.fromPartial({ key: Buffer.from('spoof'), value: Buffer.from('x') }), md, (e) => resolve(e)));
    // As a call with no credentials at all (etcd: "user name is empty"), not as root.
    assert.equal(err?.details, 'etcdserver: user name is empty');
  } finally {
    kv.close();
    await s.close();
  }
});
