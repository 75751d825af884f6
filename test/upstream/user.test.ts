// --user: the gateway authenticates to an etcd cluster with auth enabled and serves clients that
// carry no token of their own (v2 and JSON clients, which cannot log in to etcd v3), and
// authenticates again when etcd stops accepting its token (auth disabled and re-enabled drops
// every token). A client's own token still wins.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServerWith } from '../gateway/harness.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { etcdctl, hasEtcd } from '../helpers/procs.js';

const skip = !hasEtcd() && 'needs /usr/bin/etcd';
let cluster: EtcdCluster;

async function ctl(args: string[]): Promise<string> {
  const r = await etcdctl(cluster.members[0]!.endpoint, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  if (!hasEtcd()) return;
  cluster = await startEtcdCluster(1);
  await ctl(['user', 'add', 'root:rootpw']);
  await ctl(['auth', 'enable']);
});
after(async () => {
  await cluster?.stop();
});

test('--user: token-less clients are served as that user, and an invalidated token is renewed', { skip }, async () => {
  const gw = await startServerWith(['--endpoints', cluster.endpoints, '--user', 'root:rootpw']);
  try {
    const put = await fetch(`${gw.url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: 'YXV0aA==', value: 'MQ==' }) });
    assert.equal(put.status, 200, await put.clone().text());
    const v2 = await fetch(`${gw.url}/v2/keys/authed`, { method: 'PUT', body: 'value=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(v2.status, 201);
    // Directly, without credentials, etcd refuses.
    const direct = await etcdctl(cluster.members[0]!.endpoint, ['get', 'auth']);
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /user name is empty|permission denied/);
    assert.equal(await ctl(['--user', 'root:rootpw', 'get', 'auth', '--print-value-only']), '1\n');

    // Every token dies with auth disabled and enabled again: the gateway logs in again.
    await ctl(['--user', 'root:rootpw', 'auth', 'disable']);
    await ctl(['auth', 'enable']);
    const again = await fetch(`${gw.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'YXV0aA==' }) });
    assert.equal(again.status, 200, await again.clone().text());
    const kv = ((await again.json()) as { kvs: { value: string }[] }).kvs[0]!;
    assert.equal(kv.value, 'MQ==');

    // A client's own (bad) token is passed through, not replaced by the gateway's.
    const own = await fetch(`${gw.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'YXV0aA==' }), headers: { authorization: 'not-a-token' } });
    assert.equal(own.status, 401);
  } finally {
    await gw.close();
  }
});

test('without --user, token-less requests to an auth-enabled cluster fail as etcd answers them', { skip }, async () => {
  const gw = await startServerWith(['--endpoints', cluster.endpoints]).catch((e: unknown) => e);
  // The v2 layer's startup read is refused: the server does not start, with etcd's reason.
  if (gw instanceof Error) {
    assert.match(gw.message, /user name is empty|permission denied/);
    return;
  }
  try {
    const r = await fetch(`${(gw as { url: string }).url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'YXV0aA==' }) });
    assert.notEqual(r.status, 200);
  } finally {
    await (gw as { close(): Promise<void> }).close();
  }
});
