// --auto-tls and --peer-auto-tls: https URLs with no certificate given get a self-signed one, made
// once under <data-dir>/fixtures/{client,peer} the way etcd 3.4 makes it (compared with one the
// real etcd wrote) and reused on restart. As in etcd, the client CA, client certificate auth and
// the CRL are then not used, and members dialing peers skip verification of their certificates.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { loadConfig } from '../../src/config/index.js';
import { ETCD_BIN, etcdctl, freePort, hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { startOurCluster } from '../helpers/ourcluster.js';
import { hasOpenssl, OPENSSL_BIN, servedFingerprint } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';
import { agreedLeader, eventually, get, put } from '../cluster/helpers.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd, /usr/bin/etcdctl and /usr/bin/openssl';
const run = promisify(execFile);

let dir = '';
before(async () => {
  if (skip === false) dir = await makeTempDir('auto-tls-');
});
after(async () => {
  if (dir !== '') await removeTempDir(dir);
});

/** What `openssl x509 -text` says of a certificate, less what differs between any two (serial, dates, key, signature). */
async function template(certFile: string): Promise<string> {
  const { stdout } = await run(OPENSSL_BIN, ['x509', '-in', certFile, '-noout', '-text']);
  return stdout.split('\n')
    .filter((l) => !/^\s+([0-9a-f]{2}:)+[0-9a-f]{0,2}$/.test(l)) // hex dumps: serial, public key, signature
    .filter((l) => !/Not (Before|After)/.test(l))
    .join('\n');
}

/** Starts real etcd 3.4 with --auto-tls/--peer-auto-tls on https URLs just long enough to write its fixtures. */
async function etcdFixtures(data: string): Promise<void> {
  const [c, p] = [await freePort(), await freePort()];
  const child = spawn(ETCD_BIN, [
    '--name', 'x', '--data-dir', data,
    '--listen-client-urls', `https://127.0.0.1:${c}`, '--advertise-client-urls', `https://127.0.0.1:${c}`,
    '--listen-peer-urls', `https://127.0.0.1:${p}`, '--initial-advertise-peer-urls', `https://127.0.0.1:${p}`,
    '--initial-cluster', `x=https://127.0.0.1:${p}`, '--auto-tls', '--peer-auto-tls',
  ], { stdio: 'ignore' });
  try {
    await eventually('etcd wrote its fixtures', async () => (existsSync(join(data, 'fixtures', 'client', 'key.pem')) && existsSync(join(data, 'fixtures', 'peer', 'key.pem')) ? true : undefined), 10_000);
  } finally {
    child.kill('SIGKILL');
  }
}

test('--auto-tls makes the certificate etcd 3.4 makes, serves gRPC and HTTP with it, and reuses it on restart', { skip }, async () => {
  const data = join(dir, 'ours');
  // --client-cert-auth and a CA that does not exist: auto TLS drops them, as etcd does.
  const args = ['--data-dir', data, '--listen-client-urls', 'https://127.0.0.1:0', '--auto-tls', '--client-cert-auth', '--trusted-ca-file', '/nonexistent/ca.pem'];
  let s = await startServerWith(args);
  const certFile = join(data, 'fixtures', 'client', 'cert.pem');
  let fingerprint: string;
  try {
    const port = s.listeners[0]!.port;
    const ep = `127.0.0.1:${port}`;
    fingerprint = new X509Certificate(readFileSync(certFile)).fingerprint256;
    assert.equal(await servedFingerprint(port), fingerprint, 'the port serves the file\'s certificate');
    assert.equal(statSync(join(data, 'fixtures', 'client', 'key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(data, 'fixtures', 'client')).mode & 0o777, 0o700);

    // The same template as the real etcd's own auto-TLS certificate (both for 127.0.0.1).
    const real = join(dir, 'real');
    await etcdFixtures(real);
    for (const side of ['client', 'peer']) {
      assert.equal(await template(join(real, 'fixtures', side, 'cert.pem')), await template(certFile), `etcd's ${side} certificate`);
    }
    const x = new X509Certificate(readFileSync(certFile));
    assert.equal(x.subject, 'O=etcd');
    assert.equal(x.subjectAltName, 'IP Address:127.0.0.1');
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'secp521r1');
    assert.equal(Date.parse(x.validTo) - Date.parse(x.validFrom), 365 * 24 * 3600 * 1000);

    // gRPC: etcdctl must be told not to verify (the certificate is self-signed), as with etcd.
    const ctl = (extra: string[], cmd: string[]) => etcdctl(ep, ['--insecure-transport=false', '--dial-timeout=2s', '--command-timeout=3s', ...extra, ...cmd], { timeoutMs: 15_000 });
    const putR = await ctl(['--insecure-skip-tls-verify'], ['put', 'auto', 'tls']);
    assert.equal(putR.stdout, 'OK\n', putR.stderr);
    assert.equal((await ctl(['--insecure-skip-tls-verify'], ['get', 'auto', '--print-value-only'])).stdout, 'tls\n');
    const verified = await ctl([], ['get', 'auto']);
    assert.notEqual(verified.code, 0, 'a verifying client refuses the self-signed certificate');
    // HTTP/1.1 on the same port, no client certificate asked for.
    const a = new Agent({ connect: { rejectUnauthorized: false } });
    try {
      const r = await request(`https://${ep}/v2/keys/auto-v2`, { method: 'PUT', body: 'value=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, dispatcher: a });
      assert.equal(r.statusCode, 201);
      await r.body.dump();
    } finally {
      await a.close();
    }
  } finally {
    await s.close();
  }
  // A restart finds the pair and serves it again (and keeps the data written over it).
  s = await startServerWith(args);
  try {
    assert.equal(await servedFingerprint(s.listeners[0]!.port), fingerprint);
    const r = await etcdctl(`127.0.0.1:${s.listeners[0]!.port}`, ['--insecure-transport=false', '--insecure-skip-tls-verify', 'get', 'auto', '--print-value-only']);
    assert.equal(r.stdout, 'tls\n', r.stderr);
  } finally {
    await s.close();
  }
});

test('--auto-tls with a certificate given uses the certificate (etcd\'s warning)', () => {
  const r = loadConfig(['--listen-client-urls', 'https://127.0.0.1:2379', '--auto-tls', '--cert-file', 'c.pem', '--key-file', 'k.pem'], {});
  assert.ok(r.kind === 'run');
  assert.equal(r.config.clientTls?.certFile, 'c.pem');
  assert.equal(r.config.clientTls?.selfCert, undefined);
  assert.deepEqual(r.warnings, ['ignoring client auto TLS since certs given']);
  const peer = ['--listen-peer-urls', 'https://127.0.0.1:2380', '--initial-advertise-peer-urls', 'https://127.0.0.1:2380', '--initial-cluster', 'default=https://127.0.0.1:2380'];
  const given = loadConfig([...peer, '--peer-auto-tls', '--peer-cert-file', 'p.pem', '--peer-key-file', 'p.key'], {});
  assert.ok(given.kind === 'run');
  assert.deepEqual(given.warnings, ['ignoring peer auto TLS since certs given']);
  // The auto pair replaces the whole peer TLS setup, as in etcd.
  const auto = loadConfig([...peer, '--data-dir', '/d', '--peer-auto-tls', '--peer-client-cert-auth', '--peer-trusted-ca-file', 'ca.pem', '--peer-cert-allowed-cn', 'x', '--peer-crl-file', 'c.crl'], {});
  assert.ok(auto.kind === 'run');
  assert.deepEqual(auto.config.peerTls, {
    certFile: '/d/fixtures/peer/cert.pem', keyFile: '/d/fixtures/peer/key.pem', trustedCaFile: '', clientCertAuth: false, allowedCn: '', allowedHostname: '', crlFile: '',
    ciphers: undefined, selfCert: { dir: '/d/fixtures/peer', hosts: ['127.0.0.1'] },
  });
  // Without --auto-tls the missing certificate is still etcd's error.
  assert.throws(() => loadConfig(['--listen-client-urls', 'https://127.0.0.1:2379'], {}), /TLS key\/cert \(--cert-file, --key-file\) must be provided/);
});

test('--peer-auto-tls: three members with their own self-signed certificates elect and replicate', { skip }, async () => {
  // --peer-client-cert-auth too: auto TLS drops it (etcd replaces its whole peer TLS settings).
  const c = await startOurCluster(3, { peerTls: 'auto', extraArgs: ['--peer-client-cert-auth'] });
  try {
    const eps = c.members.map((m) => m.endpoint);
    await eventually('a leader', () => agreedLeader(eps));
    await put(eps[0]!, 'peer-auto', 'v');
    assert.equal(await get(eps[2]!, 'peer-auto'), 'v');
    const prints = new Set<string>();
    for (const m of c.members) {
      assert.match(m.peerUrl, /^https:/);
      const file = new X509Certificate(readFileSync(join(m.dataDir, 'fixtures', 'peer', 'cert.pem'))).fingerprint256;
      assert.equal(await servedFingerprint(Number(new URL(m.listenPeerUrl).port)), file, `${m.name} serves its own certificate`);
      prints.add(file);
    }
    assert.equal(prints.size, 3, 'one certificate per member');
    // No client certificate is asked for: a plain https client (not verifying) reads /members.
    const a = new Agent({ connect: { rejectUnauthorized: false } });
    try {
      const r = await request(`${c.members[1]!.listenPeerUrl}/members`, { dispatcher: a });
      assert.equal(r.statusCode, 200);
      assert.equal(((await r.body.json()) as unknown[]).length, 3);
    } finally {
      await a.close();
    }
  } finally {
    await c.stop();
  }
});
