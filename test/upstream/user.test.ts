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

test('--user: v2 basic auth checks the cluster\'s own users and roles; token-less v2 clients run as --user', { skip }, async () => {
  await ctl(['--user', 'root:rootpw', 'user', 'add', 'vic:vicpw']);
  await ctl(['--user', 'root:rootpw', 'role', 'add', 'v2app']);
  await ctl(['--user', 'root:rootpw', 'role', 'grant-permission', 'v2app', 'read', '/v2/app/', '--prefix']);
  await ctl(['--user', 'root:rootpw', 'user', 'grant-role', 'vic', 'v2app']);
  const gw = await startServerWith(['--endpoints', cluster.endpoints, '--user', 'root:rootpw']);
  const v2 = (method: string, path: string, cred?: string, body?: string): Promise<Response> => fetch(`${gw.url}${path}`, {
    method,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(cred === undefined ? {} : { authorization: `Basic ${Buffer.from(cred).toString('base64')}` }),
    },
    ...(body === undefined ? {} : { body }),
  });
  try {
    assert.equal((await v2('PUT', '/v2/keys/app/x', undefined, 'value=1')).status, 201);
    const read = await v2('GET', '/v2/keys/app/x', 'vic:vicpw');
    assert.equal(read.status, 200, await read.clone().text());
    assert.equal(((await read.json()) as { node: { value: string } }).node.value, '1');
    for (const denied of [v2('PUT', '/v2/keys/app/x', 'vic:vicpw', 'value=2'), v2('GET', '/v2/keys/other', 'vic:vicpw'), v2('GET', '/v2/keys/app/x', 'vic:nope')]) {
      const r = await denied;
      assert.equal(r.status, 401);
      assert.equal(((await r.json()) as { errorCode: number }).errorCode, 110);
    }
    // the v2 auth API reads the cluster's v3 users, for a root caller only
    assert.equal((await v2('GET', '/v2/auth/users/vic', 'vic:vicpw')).status, 401);
    const vic = await v2('GET', '/v2/auth/users/vic', 'root:rootpw');
    assert.equal(await vic.text(), '{"user":"vic","roles":[{"role":"v2app","permissions":{"kv":{"read":["/app/*"],"write":null}}}]}\n');
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
