// Gateway mode through real clients: etcdctl v3 (gRPC) against our binary in front of a real
// 3-member etcd 3.4 cluster; the caller's token reaching etcd; retries only where safe (an
// endpoint that refuses connections is skipped even for writes, and the write is applied once);
// deadlines (an endpoint that accepts and never answers fails within the request timeout with a
// clear error); lease keep-alives of one lease coalesced into one upstream message; concurrent
// reads coalesced into shared txns, each answered as etcd answers it alone.
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import * as pb from '../../src/gen/etcdserverpb/rpc.js';
import { StatusError } from '../../src/backend/errors.js';
import { toServiceError } from '../../src/grpc/status.js';
import { UpstreamBackend } from '../../src/upstream/backend.js';
import { startServerWith } from '../gateway/harness.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { etcdctl, freePort, hasEtcd, startOurServer, type Server } from '../helpers/procs.js';

const skip = !hasEtcd() && 'needs /usr/bin/etcd';
let cluster: EtcdCluster;
let ours: Server;

before(async () => {
  if (!hasEtcd()) return;
  cluster = await startEtcdCluster(3);
  ours = await startOurServer({ extraArgs: ['--endpoints', cluster.endpoints] });
});
after(async () => {
  await ours?.stop();
  await cluster?.stop();
});


test('etcdctl v3 through the gateway: KV, txn, watch, leases, members, status', { skip }, async () => {
  const ep = ours.endpoint;
  const ok = async (args: string[], opts = {}): Promise<string> => {
    const r = await etcdctl(ep, args, opts);
    assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  assert.equal(await ok(['put', 'foo', 'bar']), 'OK\n');
  assert.equal(await ok(['get', 'foo']), 'foo\nbar\n');
  // The same data straight from a member.
  assert.equal((await etcdctl(cluster.members[2]!.endpoint, ['get', 'foo'])).stdout, 'foo\nbar\n');
  assert.equal(await ok(['txn'], { stdin: 'value("foo") = "bar"\n\nput foo baz\n\nput foo nope\n\n' }), 'SUCCESS\n\nOK\n');

  let seen = '';
  const watch = etcdctl(ep, ['watch', 'w', '--prefix'], { timeoutMs: 4000, onStdout: (c) => { seen += c; } });
  await new Promise((r) => setTimeout(r, 700));
  await ok(['put', 'w1', 'a']);
  await ok(['del', 'w1']);
  await watch;
  assert.equal(seen, 'PUT\nw1\na\nDELETE\nw1\n\n');

  const grant = await ok(['lease', 'grant', '30']);
  const id = /lease ([0-9a-f]+) granted/.exec(grant)![1]!;
  await ok(['put', 'leased', 'v', '--lease', id]);
  assert.match(await ok(['lease', 'keep-alive', '--once', id]), new RegExp(`lease ${id} keepalived with TTL\\(30\\)`));
  assert.match(await ok(['lease', 'timetolive', id, '--keys']), /attached keys\(\[leased\]\)/);
  assert.match(await ok(['lease', 'revoke', id]), /revoked/);
  assert.equal(await ok(['get', 'leased']), '');

  const members = await ok(['member', 'list']);
  assert.equal(members.trim().split('\n').length, 3, members);
  assert.match(await ok(['endpoint', 'status']), new RegExp(`^${ep}, [0-9a-f]+, 3\\.4\\.`));
  const bad = await etcdctl(ep, ['get', 'foo', '--rev', '999999']);
  assert.match(bad.stderr, /etcdserver: mvcc: required revision is a future revision/);
});

test('the caller\'s token reaches etcd (auth is off there, so etcd refuses it, as it would directly)', { skip }, async () => {
  const body = JSON.stringify({ key: Buffer.from('foo').toString('base64') });
  const direct = await fetch(`http://${cluster.members[0]!.endpoint}/v3/kv/range`, { method: 'POST', body, headers: { authorization: 'sometoken' } });
  const via = await fetch(`${ours.clientUrl}/v3/kv/range`, { method: 'POST', body, headers: { authorization: 'sometoken' } });
  assert.equal(via.status, direct.status);
  assert.deepEqual(await via.json(), await direct.json());
  assert.equal(via.status, 401);
});

test('an endpoint refusing connections is skipped, even for a write, which is applied once', { skip }, async () => {
  const dead = await freePort();
  const s = await startServerWith(['--endpoints', `127.0.0.1:${dead},${cluster.endpoints}`, '--data-dir', '/nonexistent']);
  try {
    const before = await (s.backend as UpstreamBackend).range(pb.RangeRequest.fromPartial({ key: Buffer.from('x') }));
    const put = await (s.backend as UpstreamBackend).put(pb.PutRequest.fromPartial({ key: Buffer.from('once'), value: Buffer.from('1') }));
    assert.equal(put.header!.revision, before.header!.revision + 1n, 'exactly one revision: the write was sent once');
    const got = await (s.backend as UpstreamBackend).range(pb.RangeRequest.fromPartial({ key: Buffer.from('once') }));
    assert.equal(got.kvs[0]!.version, 1n);
  } finally {
    await s.close();
  }
});

test('an endpoint that accepts and never answers: requests fail within --upstream-timeout, clearly', { skip }, async () => {
  const sockets: Socket[] = [];
  const hole: NetServer = createServer((c) => { sockets.push(c); });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const port = (hole.address() as { port: number }).port;
  // The backend alone: the server itself waits for the cluster at startup (the v2 watch hub).
  const b = new UpstreamBackend({ endpoints: [`127.0.0.1:${port}`], timeoutMs: 700, maxRequestBytes: 1 << 20, watchBacklogBytesMax: 1 << 20 });
  try {
    for (const call of [
      () => b.put(pb.PutRequest.fromPartial({ key: Buffer.from('a'), value: Buffer.from('a') })),
      () => b.range(pb.RangeRequest.fromPartial({ key: Buffer.from('a') })),
    ]) {
      const t0 = Date.now();
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof StatusError);
        assert.equal(e.grpcCode, 4);
        assert.equal(e.message, 'context deadline exceeded');
        return true;
      });
      const ms = Date.now() - t0;
      assert.ok(ms >= 600 && ms < 2000, `failed after ${ms} ms`);
    }
    // What a gateway client then sees: grpc-gateway's 504 with the same text.
    const s = toServiceError(new StatusError(4, 'context deadline exceeded'), { error: () => undefined });
    assert.equal(s.code, 4);
  } finally {
    await b.close();
    for (const c of sockets) c.destroy();
    hole.close();
  }
});

test('concurrent keep-alives of one lease are one upstream message', { skip }, async () => {
  const s = await startServerWith(['--endpoints', cluster.endpoints]);
  try {
    const b = s.backend as UpstreamBackend;
    const lease = await b.leaseGrant(pb.LeaseGrantRequest.fromPartial({ TTL: 60n }));
    const sentBefore = b.keepAliveMessagesSent;
    const answers = await Promise.all(Array.from({ length: 100 }, () => b.leaseKeepAlive(pb.LeaseKeepAliveRequest.fromPartial({ ID: lease.ID }))));
    for (const a of answers) {
      assert.equal(a.ID, lease.ID);
      assert.equal(a.TTL, 60n);
    }
    assert.equal(b.keepAliveMessagesSent - sentBefore, 1);
    // An unknown lease: etcd answers TTL 0, as the gateway does.
    const unknown = await b.leaseKeepAlive(pb.LeaseKeepAliveRequest.fromPartial({ ID: 12345n }));
    assert.equal(unknown.TTL, 0n);
  } finally {
    await s.close();
  }
});

test('concurrent reads are coalesced into shared txns and each answer is what etcd gives it alone', { skip }, async () => {
  const s = await startServerWith(['--endpoints', cluster.endpoints]);
  const agent = new Agent({ connections: 128 });
  const b64 = (x: string): string => Buffer.from(x).toString('base64');
  const post = async (base: string, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await request(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), dispatcher: agent });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  };
  try {
    for (let i = 0; i < 20; i++) assert.equal((await post(s.url, '/v3/kv/put', { key: b64(`coalesce/k${i}`), value: b64(`v${i}`) })).status, 200);
    const rev = Number(((await post(s.url, '/v3/kv/put', { key: b64('coalesce/k0'), value: b64('again') })).json.header as { revision: string }).revision);
    assert.equal((await post(s.url, '/v3/kv/compaction', { revision: String(rev - 1), physical: true })).status, 200);
    // A mix in which some requests make etcd refuse a txn holding them (a compacted revision):
    // those must get their own error and their batch-mates their own answers.
    const reqs: { path: string; body: unknown }[] = [];
    for (let i = 0; i < 400; i++) {
      const k = `coalesce/k${i % 20}`;
      switch (i % 6) {
        case 0: reqs.push({ path: '/v3/kv/range', body: { key: b64(k) } }); break;
        case 1: reqs.push({ path: '/v3/kv/range', body: { key: b64('coalesce/'), range_end: b64('coalesce0'), limit: 3 } }); break;
        case 2: reqs.push({ path: '/v3/kv/range', body: { key: b64('coalesce/'), range_end: b64('coalesce0'), count_only: true, serializable: true } }); break;
        case 3: reqs.push({ path: '/v3/kv/range', body: { key: b64(k), revision: String(rev - 2) } }); break;
        case 4: reqs.push({ path: '/v3/kv/txn', body: { compare: [{ key: b64(k), target: 'VALUE', value: b64(`v${i % 20}`) }], success: [{ request_range: { key: b64(k) } }], failure: [{ request_range: { key: b64('coalesce/k1') } }] } }); break;
        default: reqs.push({ path: '/v3/kv/range', body: { key: b64('nothing-here') } });
      }
    }
    const before = (s.backend as UpstreamBackend).readsCoalesced;
    const via = await Promise.all(reqs.map((r) => post(s.url, r.path, r.body)));
    assert.ok((s.backend as UpstreamBackend).readsCoalesced - before > 0, 'some reads shared a txn');
    const direct = `http://${cluster.members[0]!.endpoint}`;
    for (let i = 0; i < reqs.length; i++) {
      const want = await post(direct, reqs[i]!.path, reqs[i]!.body);
      const got = via[i]!;
      assert.equal(got.status, want.status, JSON.stringify(reqs[i]));
      const strip = (j: Record<string, unknown>): unknown => {
        const { header, ...rest } = j;
        const h = header as { revision?: string; cluster_id?: string } | undefined;
        return { ...rest, revision: h?.revision, cluster: h?.cluster_id };
      };
      assert.deepEqual(strip(got.json), strip(want.json), JSON.stringify(reqs[i]));
    }
  } finally {
    await agent.close();
    await s.close();
  }
});
