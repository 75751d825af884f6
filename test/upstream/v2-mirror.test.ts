// Gateway mode's v2 read mirror (src/upstream/mirror.ts), checked against a real etcd 3.4: v2 GETs
// without quorum=true are answered without any read reaching etcd (counted in etcd's own gRPC
// metrics), a client always reads its own writes, writes made straight to etcd show up, GETs
// with quorum=true still read etcd, and a keyspace over --v2-read-mirror-bytes is read from etcd.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually } from '../cluster/helpers.js';
import { startEtcdCluster } from '../helpers/cluster.js';
import { etcdctl, hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

const skip = !hasEtcd() && 'needs /usr/bin/etcd';
let etcd: Server;
let gw: Server;
let small: Server;
before(async () => {
  if (!hasEtcd()) return;
  etcd = await startRealEtcd();
  [gw, small] = await Promise.all([
    startOurServer({ extraArgs: ['--endpoints', etcd.endpoint, '--v2-prefix', '/m1'] }),
    startOurServer({ extraArgs: ['--endpoints', etcd.endpoint, '--v2-prefix', '/m2', '--v2-read-mirror-bytes', '2000'] }),
  ]);
});
after(async () => {
  await Promise.all([gw?.stop(), small?.stop()]);
  await etcd?.stop();
});

/** KV reads served (Range and Txn calls: our v2 reads are one or the other), summed over etcd members (host:port). */
async function kvReads(endpoints: readonly string[]): Promise<number> {
  let n = 0;
  for (const endpoint of endpoints) {
    const text = await (await fetch(`http://${endpoint}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith('grpc_server_handled_total{')) continue;
      if (!/grpc_service="etcdserverpb.KV"/.test(line) || !/grpc_method="(Range|Txn)"/.test(line)) continue;
      n += Number(line.split(' ')[1]);
    }
  }
  return n;
}

const etcdReads = (): Promise<number> => kvReads([etcd.endpoint]);

/** One sample of our /metrics. */
async function ours(srv: Server, sample: string): Promise<number> {
  const text = await (await fetch(`${srv.clientUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  assert.ok(line !== undefined, `${sample} in /metrics`);
  return Number(line.split(' ')[1]);
}

async function v2(srv: Server, method: string, path: string, form?: string): Promise<{ status: number; index: number; body: { node?: { value?: string; nodes?: { key: string }[] }; errorCode?: number } }> {
  const res = await fetch(`${srv.clientUrl}/v2/keys${path}`, {
    method,
    ...(form !== undefined ? { body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
  });
  return { status: res.status, index: Number(res.headers.get('x-etcd-index')), body: await res.json() as never };
}

test('v2 GETs come from the mirror: no read reaches etcd; quorum=true GETs still do', { skip }, async () => {
  assert.equal((await v2(gw, 'PUT', '/dir/a', 'value=1')).status, 201);
  assert.equal((await v2(gw, 'PUT', '/dir/b', 'value=2')).status, 201);
  // Writes are answered before the watch brings them: reads wait for the copy (they go to etcd meanwhile).
  await eventually('GETs served by the mirror', async () => {
    const before = await etcdReads();
    await v2(gw, 'GET', '/dir/a');
    return (await etcdReads()) === before || undefined;
  }, 10_000);
  const before = await etcdReads();
  for (let i = 0; i < 50; i++) {
    const r = await v2(gw, 'GET', '/dir/a');
    assert.equal(r.body.node?.value, '1');
    const d = await v2(gw, 'GET', '/dir?recursive=true&sorted=true');
    assert.deepEqual(d.body.node?.nodes?.map((n) => n.key), ['/dir/a', '/dir/b']);
    assert.equal((await v2(gw, 'GET', '/nope')).body.errorCode, 100);
  }
  assert.equal(await etcdReads(), before, '150 GETs, no read at etcd');
  assert.ok(await ours(gw, 'etcd_gateway_v2_mirror_reads_total{source="copy"}') >= 150);
  assert.ok(await ours(gw, 'etcd_gateway_v2_mirror_revision') > 0);
  assert.ok(await ours(gw, 'etcd_gateway_v2_mirror_bytes') > 0);
  for (let i = 0; i < 5; i++) assert.equal((await v2(gw, 'GET', '/dir/a?quorum=true')).body.node?.value, '1');
  assert.ok((await etcdReads()) >= before + 5, 'quorum=true reads etcd');
});

test('a client reads its own writes at once, and the index never goes back', { skip }, async () => {
  let last = 0;
  for (let i = 0; i < 200; i++) {
    const w = await v2(gw, 'PUT', '/ryw', `value=${i}`);
    assert.ok(w.status === 200 || w.status === 201);
    const r = await v2(gw, 'GET', '/ryw');
    assert.equal(r.body.node?.value, String(i), `GET right after PUT ${i}`);
    assert.ok(r.index >= w.index && r.index >= last, `X-Etcd-Index ${r.index} after a write at ${w.index}`);
    last = r.index;
  }
  const d = await v2(gw, 'DELETE', '/ryw');
  assert.equal(d.status, 200);
  assert.equal((await v2(gw, 'GET', '/ryw')).body.errorCode, 100, 'a delete is seen at once too');
});

test('writes made elsewhere (straight to etcd, through the v3 keyspace) show up in GETs', { skip }, async () => {
  const w = await v2(gw, 'PUT', '/elsewhere', 'value=old');
  assert.equal(w.status, 201);
  // The v2 node's v3 key (src/v2/keys.ts): prefix, depth 001, path. Written by etcdctl, not by us.
  const put = await etcdctl(etcd.endpoint, ['put', '/m1/001/elsewhere', 'new']);
  assert.equal(put.code, 0, put.stderr);
  await eventually('the direct write in a GET', async () => (await v2(gw, 'GET', '/elsewhere')).body.node?.value === 'new' || undefined, 10_000);
  const del = await etcdctl(etcd.endpoint, ['del', '/m1/001/elsewhere']);
  assert.equal(del.code, 0, del.stderr);
  await eventually('the direct delete in a GET', async () => (await v2(gw, 'GET', '/elsewhere')).body.errorCode === 100 || undefined, 10_000);
});

test('a keyspace larger than --v2-read-mirror-bytes is read from etcd, with the same answers', { skip }, async () => {
  for (let i = 0; i < 20; i++) assert.equal((await v2(small, 'PUT', `/big/k${i}`, `value=${'x'.repeat(100)}`)).status, 201);
  await new Promise((r) => setTimeout(r, 300));
  const before = await etcdReads();
  const r = await v2(small, 'GET', '/big?recursive=true');
  assert.equal(r.body.node?.nodes?.length, 20);
  assert.ok((await etcdReads()) > before, 'the GET read etcd');
  assert.equal(await ours(small, 'etcd_gateway_v2_mirror_revision'), 0, 'no copy');
  assert.equal(await ours(small, 'etcd_gateway_v2_mirror_bytes'), 0);
  assert.ok(await ours(small, 'etcd_gateway_v2_mirror_reads_total{source="cluster"}') >= 1);
});

test('across the SIGKILL of an upstream member: reads of own writes stay right, and the copy serves again', { skip, timeout: 120_000 }, async () => {
  const cluster = await startEtcdCluster(3);
  const g = await startOurServer({ extraArgs: ['--endpoints', cluster.endpoints] });
  const reads = (): Promise<number> => kvReads(cluster.members.filter((m) => m.server !== undefined).map((m) => m.endpoint));
  try {
    assert.equal((await v2(g, 'PUT', '/f/k', 'value=start')).status, 201);
    let last = 'start';
    let written = 0;
    /** Writes refused since the last acknowledged one (an ambiguous failure may still have applied). */
    let maybe: string[] = [];
    // Every member in turn: the gateway's calls and its watch stick to one healthy member, whichever.
    for (let victim = 0; victim < 3; victim++) {
      await cluster.kill9(victim);
      for (let i = 0; i < 30; i++) {
        const w = await v2(g, 'PUT', '/f/k', `value=${victim}-${i}`);
        if (w.status !== 200) { // refused while the gateway moves to another member
          maybe.push(`${victim}-${i}`);
          continue;
        }
        maybe = [];
        last = `${victim}-${i}`;
        written++;
        assert.equal((await v2(g, 'GET', '/f/k')).body.node?.value, `${victim}-${i}`, `read after write ${victim}-${i}`);
      }
      await cluster.restart(victim);
    }
    await eventually('GETs served by the copy again', async () => {
      const before = await reads();
      for (let i = 0; i < 5; i++) await v2(g, 'GET', '/f/k');
      return (await reads()) === before || undefined;
    }, 10_000);
    assert.ok(written >= 60, `${written} of 90 writes acknowledged`);
    const final = (await v2(g, 'GET', '/f/k')).body.node?.value ?? '';
    assert.ok([last, ...maybe].includes(final), `${final}: the last acknowledged write ${last} (or a refused one after it: ${maybe.join(' ')})`);
  } finally {
    await g.stop();
    await cluster.stop();
  }
});
