// --client-cert-allowed-hostname and --peer-cert-allowed-hostname: with client certificate auth,
// only a certificate valid for that hostname (its DNS or IP subject alternative names) is taken,
// as etcd 3.4 (its transport's VerifyPeerCertificate); compared with the real etcd given the same
// files on the client port. etcd's allowed CN and hostname are exclusive on the peer port.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FlagError, loadConfig } from '../../src/config/index.js';
import type { RunningServer } from '../../src/server.js';
import { startServerWith } from '../gateway/harness.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { freePort, hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { etcdctlTls, hasOpenssl, makeCa, tlsGet, type IssuedCert, type TestCa } from '../helpers/tls.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd, /usr/bin/etcdctl and /usr/bin/openssl';

let dir = '';
let ca: TestCa;
/** Valid for 127.0.0.1 and localhost (and usable as a client certificate). */
let named: IssuedCert;
/** A client certificate of the same CA with no subject alternative names. */
let plain: IssuedCert;
before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('tls-hostname-');
  ca = makeCa(dir);
  named = ca.server('named');
  plain = ca.client('plain', 'localhost');
});
after(async () => {
  if (dir !== '') await removeTempDir(dir);
});

/** etcdctl over TLS with a client certificate: stdout, or its "Error:" line. */
const ctl = (ep: string, cert: IssuedCert, args: string[]): Promise<string> => etcdctlTls(ep, ca.ca, cert, args);

/** GET url with this client certificate: the status, or 'refused' when the connection is cut. */
const getWith = (url: string, cert: IssuedCert | undefined): Promise<number | 'refused'> => tlsGet(url, ca.ca, cert);

test('--client-cert-allowed-hostname: a client certificate valid for it is taken, another is refused, as by etcd 3.4', { skip }, async () => {
  for (const hostname of ['localhost', '127.0.0.1']) {
    const real: EtcdCluster = await startEtcdCluster(1, ['--client-cert-allowed-hostname', hostname], { cert: named.cert, key: named.key, ca: ca.ca });
    let ours: RunningServer | undefined;
    try {
      ours = await startServerWith(['--data-dir', join(dir, `client-${hostname}`), '--listen-client-urls', 'https://127.0.0.1:0',
        '--cert-file', named.cert, '--key-file', named.key, '--trusted-ca-file', ca.ca, '--client-cert-auth', '--client-cert-allowed-hostname', hostname]);
      const eps = [`127.0.0.1:${ours.listeners[0]!.port}`, real.members[0]!.tlsEndpoint!];
      const seen: string[][] = [];
      for (const ep of eps) seen.push([await ctl(ep, named, ['put', 'h', 'ok']), await ctl(ep, plain, ['get', 'h'])]);
      assert.deepEqual(seen[0], seen[1], `${hostname}: ours and etcd answer alike`);
      assert.deepEqual(seen[0], ['OK\n', 'Error: context deadline exceeded'], hostname);
      assert.equal(await getWith(`https://${eps[0]}/health`, named), 200);
      assert.equal(await getWith(`https://${eps[0]}/health`, plain), 'refused', 'HTTP/1.1 on the same port: cut before any request');
    } finally {
      await ours?.close();
      await real.stop();
    }
  }
});

test('--peer-cert-allowed-hostname: a peer certificate not valid for it is cut off after the handshake', { skip }, async () => {
  const url = `https://127.0.0.1:${await freePort()}`;
  const s = await startServerWith(['--data-dir', join(dir, 'peer'), '--listen-peer-urls', url, '--initial-advertise-peer-urls', url, '--initial-cluster', `default=${url}`,
    '--peer-cert-file', named.cert, '--peer-key-file', named.key, '--peer-trusted-ca-file', ca.ca, '--peer-client-cert-auth', '--peer-cert-allowed-hostname', 'localhost']);
  try {
    assert.equal(await getWith(`${url}/members`, named), 200);
    assert.equal(await getWith(`${url}/members`, plain), 'refused');
  } finally {
    await s.close();
  }
});

test('--peer-cert-allowed-cn and --peer-cert-allowed-hostname together: etcd 3.4\'s start-up error', () => {
  const https = ['--listen-peer-urls', 'https://127.0.0.1:2380', '--initial-advertise-peer-urls', 'https://127.0.0.1:2380', '--initial-cluster', 'default=https://127.0.0.1:2380',
    '--peer-cert-file', 'p.pem', '--peer-key-file', 'p.key', '--peer-client-cert-auth'];
  assert.throws(() => loadConfig([...https, '--peer-cert-allowed-cn', 'a', '--peer-cert-allowed-hostname', 'b'], {}),
    (e: unknown) => e instanceof FlagError && e.message === 'AllowedCN and AllowedHostname are mutually exclusive (cn="a", hostname="b")');
});
