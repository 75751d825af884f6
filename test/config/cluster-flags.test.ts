// The cluster flags, validated as etcd validates them, with etcd's error texts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlagError, loadConfig } from '../../src/config/index.js';

const run = (args: string[]) => {
  const r = loadConfig(args, {});
  assert.equal(r.kind, 'run');
  return (r as Extract<typeof r, { kind: 'run' }>).config;
};
const fails = (args: string[], re: RegExp) => assert.throws(() => loadConfig(args, {}), (e: unknown) => e instanceof FlagError && re.test(e.message));

test('defaults: this member alone, no peer listener, etcd\'s timing', () => {
  const c = run(['--name', 'x']);
  assert.deepEqual(c.initialCluster, [{ name: 'x', peerUrls: ['http://localhost:2380'] }]);
  assert.equal(c.initialClusterState, 'new');
  assert.equal(c.listenPeerUrls, undefined);
  assert.equal(c.heartbeatIntervalMs, 100);
  assert.equal(c.electionTimeoutMs, 1000);
});

test('a 3-member --initial-cluster: members in order, the peer listener is bound', () => {
  const c = run([
    '--name', 'b', '--initial-advertise-peer-urls', 'http://10.0.0.2:2380', '--listen-peer-urls', 'http://0.0.0.0:2380',
    '--initial-cluster', 'a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380', '--heartbeat-interval', '50', '--election-timeout', '500',
  ]);
  assert.deepEqual(c.initialCluster.map((m) => m.name), ['a', 'b', 'c']);
  assert.deepEqual(c.listenPeerUrls?.map((u) => u.href), ['http://0.0.0.0:2380/']);
  assert.equal(c.heartbeatIntervalMs, 50);
  // A lone member given --listen-peer-urls explicitly listens too; joining always does.
  assert.ok(run(['--listen-peer-urls', 'http://127.0.0.1:2390']).listenPeerUrls);
  assert.ok(run(['--initial-cluster-state', 'existing']).listenPeerUrls);
});

test('etcd\'s errors: name missing, URLs not matching, bad state, timing, malformed entries', () => {
  fails(['--name', 'z', '--initial-cluster', 'a=http://h:2380'], /couldn't find local name "z" in the initial cluster configuration/);
  fails(['--name', 'a', '--initial-cluster', 'a=http://h:2380'], /--initial-cluster has a=http:\/\/h:2380 but missing from --initial-advertise-peer-urls=http:\/\/localhost:2380/);
  fails(['--initial-cluster-state', 'maybe'], /valid values are "new" or "existing"/);
  fails(['--heartbeat-interval', '300'], /--election-timeout\[1000ms\] should be at least as 5 times as --heartbeat-interval\[300ms\]/);
  fails(['--election-timeout', '60000'], /should be set less than 50000ms/);
  fails(['--initial-cluster', 'nourl'], /is not name=peer-url/);
  fails(['--name', 'a', '--initial-cluster', 'a=http://localhost:2380,b=http://localhost:2380'], /given to more than one member/);
});

test('ETCD_* variables set the cluster flags too', () => {
  const r = loadConfig([], { ETCD_NAME: 'n1', ETCD_INITIAL_CLUSTER: 'n1=http://localhost:2380,n2=http://h2:2380', ETCD_HEARTBEAT_INTERVAL: '20' });
  assert.equal(r.kind, 'run');
  const c = (r as Extract<typeof r, { kind: 'run' }>).config;
  assert.equal(c.initialCluster.length, 2);
  assert.equal(c.heartbeatIntervalMs, 20);
});

test('peer TLS: https peer URLs take the --peer-* files; an https listener without them fails as etcd', () => {
  const https = ['--name', 'a', '--listen-peer-urls', 'https://127.0.0.1:2380', '--initial-advertise-peer-urls', 'https://127.0.0.1:2380', '--initial-cluster', 'a=https://127.0.0.1:2380,b=https://127.0.0.1:2381'];
  // etcd 3.4's listener error, word for word.
  fails(https, /^cannot listen on TLS for 127\.0\.0\.1:2380: KeyFile and CertFile are not presented$/);
  fails([...https, '--peer-cert-file', 'p.pem'], /KeyFile and CertFile are not presented/);
  const c = run([...https, '--peer-cert-file', 'p.pem', '--peer-key-file', 'p.key', '--peer-trusted-ca-file', 'ca.pem', '--peer-client-cert-auth', '--peer-cert-allowed-cn', 'm']);
  assert.deepEqual(c.peerTls, { certFile: 'p.pem', keyFile: 'p.key', trustedCaFile: 'ca.pem', clientCertAuth: true, allowedCn: 'm', allowedHostname: '', crlFile: '', ciphers: undefined, selfCert: undefined });
  // http peers only: no peer TLS, whatever files are given (etcd ignores them for http URLs).
  assert.equal(run(['--peer-cert-file', 'p.pem', '--peer-key-file', 'p.key']).peerTls, undefined);
  // Dialing https peers from an http listener still uses the CA (the other members' URLs are https).
  const mixed = run(['--name', 'a', '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-cluster', 'a=http://localhost:2380,b=https://127.0.0.1:2381', '--peer-trusted-ca-file', 'ca.pem']);
  assert.equal(mixed.peerTls?.trustedCaFile, 'ca.pem');
  fails(['--peer-client-cert-auth=maybe'], /invalid boolean value "maybe" for -peer-client-cert-auth/);
});
