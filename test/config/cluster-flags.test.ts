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
