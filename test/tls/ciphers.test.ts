// --cipher-suites: Go's names, checked at start with etcd 3.4's errors, mapped onto OpenSSL's for
// the client and peer ports. TLS 1.2 handshakes get only the listed suites; TLS 1.3 stays on with
// its own suites, as etcd 3.4 (Go) has it. Compared with the real etcd given the same flags.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { GO_TO_OPENSSL } from '../../src/tls/ciphers.js';
import { startEtcdCluster } from '../helpers/cluster.js';
import { ETCD_BIN, freePort, hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd and /usr/bin/openssl';
const run = promisify(execFile);
const SUITES = 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384';

let dir = '';
let ca: TestCa;
let server: IssuedCert;
let client: IssuedCert;
before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('tls-ciphers-');
  ca = makeCa(dir);
  server = ca.server('server');
  client = ca.client('client', 'client');
});
after(async () => {
  if (dir !== '') await removeTempDir(dir);
});

/** What real etcd 3.4 prints when it refuses to start with these flags (it exits at once). */
async function etcdRefusal(args: string[]): Promise<string> {
  const data = await makeTempDir('etcd-refusal-');
  try {
    await run(ETCD_BIN, ['--logger=zap', '--data-dir', data, ...args], { timeout: 10_000 });
    return 'started';
  } catch (e) {
    return (e as { stderr: string }).stderr;
  } finally {
    await removeTempDir(data);
  }
}

test('unknown suites are refused at start with etcd 3.4\'s words, TLS or not; suites Node lacks are refused too', { skip }, async () => {
  assert.throws(() => loadConfig(['--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,FOO'], {}), { message: 'unexpected TLS cipher suite "FOO"' });
  assert.match(await etcdRefusal(['--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,FOO']), /unexpected TLS cipher suite \\?"FOO\\?"/);
  // Go (and so etcd) still has RC4 and 3DES; Node 20's OpenSSL does not: refused, not dropped.
  assert.throws(() => loadConfig(['--cipher-suites', 'TLS_RSA_WITH_RC4_128_SHA'], {}), /TLS cipher suite "TLS_RSA_WITH_RC4_128_SHA" is not supported by this server's TLS library/);
  // An https client port needs an HTTP/2 suite, as Go's HTTP/2 server (etcd's) insists.
  const port = await freePort();
  const noH2 = ['--listen-client-urls', `https://127.0.0.1:${port}`, '--advertise-client-urls', `https://127.0.0.1:${port}`, '--auto-tls', '--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'];
  const message = 'http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)';
  assert.throws(() => loadConfig(noH2, {}), { message });
  assert.ok((await etcdRefusal(noH2)).includes(message), 'etcd 3.4 refuses the same list with the same text');
  // Without an https client URL the same list is fine.
  const r = loadConfig(['--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'], {});
  assert.equal(r.kind, 'run');
});

test('config file: cipher-suites is a list of names (a plain string is refused, as by etcd 3.4); auto-tls keys', () => {
  const file = (text: string) => loadConfig(['--config-file', 'e.yml'], {}, () => text);
  const r = file(`cipher-suites: [${SUITES}]\nlisten-client-urls: https://127.0.0.1:2379\nclient-transport-security:\n  auto-tls: true\npeer-transport-security:\n  auto-tls: true\n`
    + 'listen-peer-urls: https://127.0.0.1:2380\ninitial-advertise-peer-urls: https://127.0.0.1:2380\ninitial-cluster: default=https://127.0.0.1:2380\n');
  assert.ok(r.kind === 'run');
  assert.equal(r.config.clientTls?.ciphers, 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256');
  assert.equal(r.config.peerTls?.ciphers, r.config.clientTls?.ciphers);
  assert.deepEqual(r.config.clientTls?.selfCert, { dir: join('default.etcd', 'fixtures', 'client'), hosts: ['127.0.0.1'] });
  assert.deepEqual(r.config.peerTls?.selfCert, { dir: join('default.etcd', 'fixtures', 'peer'), hosts: ['127.0.0.1'] });
  assert.throws(() => file(`cipher-suites: ${SUITES}\n`), /cipher-suites: cannot unmarshal string into \[\]string/);
});

/** One handshake with these client options: "<protocol> <cipher>" or "refused". */
function handshake(port: number, opts: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({
      host: '127.0.0.1', port, ca: readFileSync(ca.ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2', 'http/1.1'], ...opts,
    }, () => {
      resolve(`${s.getProtocol() ?? '?'} ${s.getCipher().name}`);
      s.end();
    });
    s.on('error', () => resolve('refused'));
  });
}

/** TLS 1.2 offering one suite; TLS 1.3 offering one suite. */
const probes: [string, ConnectionOptions][] = [
  ['1.2 listed', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }],
  ['1.2 listed', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' }],
  ['1.2 not listed', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' }],
  ['1.2 not listed', { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' }],
  ['1.3', { minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }],
  ['1.3', { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' }],
];

test('the client and peer ports accept only the listed TLS 1.2 suites and keep TLS 1.3, as etcd 3.4', { skip }, async () => {
  const real = await startEtcdCluster(1, ['--cipher-suites', SUITES], { cert: server.cert, key: server.key, ca: ca.ca });
  const peerUrl = `https://127.0.0.1:${await freePort()}`;
  const ours = await startServerWith(['--data-dir', join(dir, 'ours'), '--listen-client-urls', 'https://127.0.0.1:0', '--cipher-suites', SUITES,
    '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.ca, '--client-cert-auth',
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `default=${peerUrl}`,
    '--peer-cert-file', server.cert, '--peer-key-file', server.key, '--peer-trusted-ca-file', ca.ca]);
  try {
    const ports = {
      ours: ours.listeners[0]!.port,
      oursPeer: Number(new URL(peerUrl).port),
      etcd: Number(real.members[0]!.tlsEndpoint!.split(':')[1]),
    };
    const outcomes: Record<string, string[]> = {};
    for (const [name, port] of Object.entries(ports)) {
      outcomes[name] = [];
      for (const [, opts] of probes) outcomes[name]!.push(await handshake(port, opts));
    }
    assert.deepEqual(outcomes.ours, outcomes.etcd, 'the client port answers as etcd\'s');
    assert.deepEqual(outcomes.oursPeer, outcomes.etcd, 'the peer port too');
    assert.deepEqual(outcomes.ours, [
      'TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256', 'TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384', 'refused', 'refused',
      'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256', 'TLSv1.3 TLS_AES_256_GCM_SHA384',
    ]);
  } finally {
    await ours.close();
    await real.stop();
  }
});

test('each Go name maps onto the OpenSSL suite of the same IANA name', { skip }, async () => {
  // "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 - ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 Kx=..."
  const { stdout } = await run('/usr/bin/openssl', ['ciphers', '-stdname', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0']);
  const iana = new Map(stdout.split('\n').map((l) => l.split(/\s+/)).filter((f) => f[1] === '-').map((f) => [f[0]!, f[2]!]));
  let checked = 0;
  for (const [go, openssl] of Object.entries(GO_TO_OPENSSL)) {
    // Go spells the ChaCha20 suites without the IANA name's _SHA256.
    const name = go.endsWith('CHACHA20_POLY1305') ? `${go}_SHA256` : go;
    if (!iana.has(name)) continue; // RC4 and 3DES: not in this OpenSSL (refused at start above)
    assert.equal(iana.get(name), openssl, go);
    checked++;
  }
  assert.ok(checked >= 17, `checked ${checked}`);
});
