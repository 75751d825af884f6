// --client-crl-file / --peer-crl-file and certificate rotation. A certificate whose serial the CRL
// lists is refused as etcd 3.4 refuses it (compared with the real etcd given the same files), and
// a CRL update applies to new connections without a restart. Replacing the certificate files on
// disk changes what new connections see (client port, peer port, and the certificate this member
// presents when it dials peers), without a restart; a half-done rotation keeps the old pair.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { freePort, hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { etcdctlTls, fingerprintOf, hasOpenssl, makeCa, rotateCert, servedFingerprint, tlsGet, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';
import { eventually } from '../cluster/helpers.js';
import { Transport, type TransportHost } from '../../src/core/rafthttp/transport.js';
import { TlsFiles } from '../../src/tls/files.js';
import type { RunningServer } from '../../src/server.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd, /usr/bin/etcdctl and /usr/bin/openssl';

let dir = '';
let ca: TestCa;
let server: IssuedCert;
let good: IssuedCert;
let revoked: IssuedCert;
let crl = '';
before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('tls-crl-');
  ca = makeCa(dir);
  server = ca.server('server');
  good = ca.client('good', 'good');
  revoked = ca.client('revoked', 'revoked');
  ca.revoke(revoked);
  crl = ca.crl(join(dir, 'clients.crl'));
});
after(async () => {
  if (dir !== '') await removeTempDir(dir);
});

/** Past the files' check interval (1 s). */
const nextCheck = (): Promise<void> => new Promise((r) => setTimeout(r, 1_100));

/** etcdctl over TLS with a client certificate: stdout, or its "Error:" line. */
const ctl = (ep: string, cert: IssuedCert, args: string[]): Promise<string> => etcdctlTls(ep, ca.ca, cert, args);

/** GET url with this client certificate: the status, or 'refused' when the connection is cut. */
const getWith = (url: string, cert: IssuedCert | undefined): Promise<number | 'refused'> => tlsGet(url, ca.ca, cert);

test('--client-crl-file: a revoked client certificate is refused, as by etcd 3.4; a new CRL applies without a restart', { skip }, async () => {
  const real: EtcdCluster = await startEtcdCluster(1, ['--client-crl-file', crl], { cert: server.cert, key: server.key, ca: ca.ca });
  let ours: RunningServer | undefined;
  try {
    ours = await startServerWith(['--data-dir', join(dir, 'crl-client'), '--listen-client-urls', 'https://127.0.0.1:0',
      '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', ca.ca, '--client-cert-auth', '--client-crl-file', crl]);
    const eps = [`127.0.0.1:${ours.listeners[0]!.port}`, real.members[0]!.tlsEndpoint!];
    const seen: string[][] = [];
    for (const ep of eps) {
      seen.push([await ctl(ep, good, ['put', 'crl', 'ok']), await ctl(ep, revoked, ['get', 'crl'])]);
    }
    assert.deepEqual(seen[0], seen[1], 'ours and etcd answer alike');
    assert.deepEqual(seen[0], ['OK\n', 'Error: context deadline exceeded']);
    // HTTP/1.1 on the same port: the revoked certificate's connection is cut before any request.
    assert.equal(await getWith(`https://${eps[0]}/health`, good), 200);
    assert.equal(await getWith(`https://${eps[0]}/health`, revoked), 'refused');

    // Revoke the good certificate too: the next connections see the new CRL, no restart.
    ca.revoke(good);
    ca.crl(crl);
    await nextCheck();
    for (const ep of eps) assert.equal(await ctl(ep, good, ['get', 'crl']), 'Error: context deadline exceeded', ep);
    assert.equal(await getWith(`https://${eps[0]}/health`, good), 'refused');
  } finally {
    await ours?.close();
    await real.stop();
  }
});

test('--peer-crl-file: a peer presenting a revoked certificate is cut off after the handshake', { skip }, async () => {
  const fresh = ca.client('peer-good', 'peer-good');
  const gone = ca.client('peer-gone', 'peer-gone');
  ca.revoke(gone);
  const peerCrl = ca.crl(join(dir, 'peers.crl'));
  const url = `https://127.0.0.1:${await freePort()}`;
  const s = await startServerWith(['--data-dir', join(dir, 'crl-peer'), '--listen-peer-urls', url, '--initial-advertise-peer-urls', url, '--initial-cluster', `default=${url}`,
    '--peer-cert-file', server.cert, '--peer-key-file', server.key, '--peer-trusted-ca-file', ca.ca, '--peer-client-cert-auth', '--peer-crl-file', peerCrl]);
  try {
    assert.equal(await getWith(`${url}/members`, fresh), 200);
    assert.equal(await getWith(`${url}/members`, gone), 'refused');
    // A CRL that does not parse refuses every certificate until it does (etcd's behaviour).
    const good = readFileSync(peerCrl);
    writeFileSync(peerCrl, '-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n');
    await nextCheck();
    assert.equal(await getWith(`${url}/members`, fresh), 'refused');
    writeFileSync(peerCrl, good);
    await nextCheck();
    assert.equal(await getWith(`${url}/members`, fresh), 200);
  } finally {
    await s.close();
  }
});

test('rotating the certificate files: new client and peer connections get the new certificate, no restart', { skip }, async () => {
  const next = ca.server('server-next');
  const live: IssuedCert = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
  const livePeer: IssuedCert = { cert: join(dir, 'live-peer.pem'), key: join(dir, 'live-peer.key') };
  rotateCert(server, live);
  rotateCert(server, livePeer);
  const peerUrl = `https://127.0.0.1:${await freePort()}`;
  const s = await startServerWith(['--data-dir', join(dir, 'rotate'), '--listen-client-urls', 'https://127.0.0.1:0',
    '--cert-file', live.cert, '--key-file', live.key, '--trusted-ca-file', ca.ca, '--client-cert-auth',
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `default=${peerUrl}`,
    '--peer-cert-file', livePeer.cert, '--peer-key-file', livePeer.key, '--peer-trusted-ca-file', ca.ca]);
  const port = s.listeners[0]!.port;
  const peerPort = Number(new URL(peerUrl).port);
  const ep = `127.0.0.1:${port}`;
  // A kept-alive connection from before the rotation.
  const pool = new Pool(`https://${ep}`, { connect: { ca: readFileSync(ca.ca), cert: readFileSync(good.cert), key: readFileSync(good.key) } });
  try {
    const [old, fresh] = [fingerprintOf(server.cert), fingerprintOf(next.cert)];
    assert.equal(await servedFingerprint(port, good), old);
    assert.equal(await servedFingerprint(peerPort), old);
    assert.equal((await pool.request({ method: 'GET', path: '/health' })).statusCode, 200);

    // Half a rotation (the new certificate, the old key): the pair does not load, the old one stays.
    rotateCert(next, live, 'cert');
    rotateCert(next, livePeer, 'cert');
    await nextCheck();
    assert.equal(await servedFingerprint(port, good), old, 'a mismatched pair is not used');
    assert.equal(await servedFingerprint(peerPort), old);
    assert.equal(await ctl(ep, good, ['put', 'rotating', '1']), 'OK\n', 'still serving');

    rotateCert(next, live, 'key');
    rotateCert(next, livePeer, 'key');
    await nextCheck();
    assert.equal(await servedFingerprint(port, good), fresh, 'the client port serves the new certificate');
    assert.equal(await servedFingerprint(peerPort), fresh, 'the peer port serves the new certificate');
    assert.equal(await ctl(ep, good, ['get', 'rotating', '--print-value-only']), '1\n', 'etcdctl over the new certificate');
    // The connection opened before the rotation goes on.
    const r = await pool.request({ method: 'GET', path: '/health' });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  } finally {
    await pool.destroy();
    await s.close();
  }
});

test('the peer client presents the rotated certificate on its next connection', { skip }, async () => {
  const next = ca.server('client-next');
  const live: IssuedCert = { cert: join(dir, 'dial.pem'), key: join(dir, 'dial.key') };
  rotateCert(server, live);
  // A peer that records the client certificate of every connection and closes each after one answer.
  const presented: string[] = [];
  const peer = createHttpsServer({ cert: readFileSync(server.cert), key: readFileSync(server.key), ca: readFileSync(ca.ca), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    presented.push((req.socket as TLSSocket).getPeerCertificate().fingerprint256);
    res.writeHead(200, { connection: 'close', 'content-type': 'application/json' }).end('{"health":"true"}');
  });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
  const addr = peer.address();
  const url = `https://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  // Only what the probes use: the transport dials its peer once a second (GET /raft/probing).
  const host = { clusterIdHex: () => '1', memberIdHex: () => '2', snapDir: join(dir, 'snap') } as unknown as TransportHost;
  const files = new TlsFiles({ certFile: live.cert, keyFile: live.key, trustedCaFile: ca.ca, crlFile: '' }, { minVersion: 'TLSv1.2' });
  const t = new Transport(host, { files, clientCertAuth: false, allowed: { cn: '', hostname: '' }, insecureSkipVerify: false });
  try {
    t.setPeers(new Map([[9n, url]]));
    await eventually('a probe with the first certificate', async () => (presented.includes(fingerprintOf(server.cert)) ? true : undefined), 5_000);
    rotateCert(next, live);
    await eventually('a probe with the rotated certificate', async () => (presented.includes(fingerprintOf(next.cert)) ? true : undefined), 5_000);
  } finally {
    await t.close();
    peer.closeAllConnections();
    await new Promise<void>((r) => peer.close(() => r()));
  }
});
