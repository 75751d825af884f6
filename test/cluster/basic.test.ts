// A 3-member cluster of our processes: one leader, replication with linearizable reads on every
// member, a SIGKILLed leader replaced while writes continue and caught up after its restart, a
// SIGSTOPped member left behind and caught up after SIGCONT; all members end with one HashKV.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, endpointStatus, eventually, get, hashKV, memberIndex, put, v3 } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3);
});
after(async () => {
  await c?.stop();
});

test('one leader, agreed by all; a write on any member is read linearizably on every other', async () => {
  const leader = await eventually('a leader', () => agreedLeader(c.running()));
  const st = await endpointStatus(c.endpoints());
  assert.equal(st.filter((s) => BigInt(s.Status.header.member_id) === leader).length, 1, 'the leader is a member');
  const terms = new Set(st.map((s) => s.Status.raftTerm));
  assert.equal(terms.size, 1, 'one term');
  for (const [i, m] of c.members.entries()) {
    await put(m.endpoint, `k${i}`, `v${i}`);
    // Linearizable: the very next read on any other member sees it (no waiting).
    for (const o of c.members) assert.equal(await get(o.endpoint, `k${i}`), `v${i}`, `${o.name} reads k${i} written on ${m.name}`);
  }
});

test('SIGKILL of the leader: a new leader, writes continue, the old leader restarts and catches up', async () => {
  const old = await eventually('a leader', () => agreedLeader(c.running()));
  const i = await memberIndex(c, old);
  const t0 = Date.now();
  await c.kill9(i);
  const nu = await eventually('a new leader', async () => {
    const l = await agreedLeader(c.running());
    return l !== old ? l : undefined;
  });
  assert.notEqual(nu, old);
  const electMs = Date.now() - t0;
  assert.ok(electMs < 10_000, `elected in ${electMs} ms`);
  // The survivors did not wait out the dead leader's lease: redialling its stream found its port closed.
  const survivors = c.members.filter((m) => m.server !== undefined);
  await eventually('a survivor that ended the dead leader\'s lease early', async () => {
    const logs = await Promise.all(survivors.map((m) => readFile(m.server!.logPath, 'utf8')));
    return logs.some((l) => l.includes('"leader":"' + old.toString(16) + '"') && l.includes('the leader refuses peer connections')) || undefined;
  }, 5_000);
  let rev = 0;
  for (let k = 0; k < 20; k++) rev = await put(c.running()[k % 2]!, `after-kill-${k}`, String(k));
  await c.restart(i);
  const back = c.members[i]!.endpoint;
  assert.equal(await get(back, 'after-kill-19'), '19');
  const hashes = await Promise.all(c.running().map((e) => eventually(`hashkv on ${e}`, () => hashKV(e, rev))));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `one HashKV at ${rev}: ${JSON.stringify(hashes)}`);
});

test('SIGSTOP of a follower: the cluster keeps working; after SIGCONT it catches up', async () => {
  const leader = await eventually('a leader', () => agreedLeader(c.running()));
  const li = await memberIndex(c, leader);
  const fi = [0, 1, 2].find((x) => x !== li)!;
  const other = [0, 1, 2].find((x) => x !== li && x !== fi)!;
  c.pause(fi);
  try {
    for (let k = 0; k < 20; k++) await put(c.members[k % 2 === 0 ? li : other]!.endpoint, `paused-${k}`, String(k));
    assert.equal(await get(c.members[other]!.endpoint, 'paused-19'), '19');
  } finally {
    c.resume(fi);
  }
  const f = c.members[fi]!.endpoint;
  // Serializable: its own state, once it has caught up by log.
  await eventually('the paused member catches up', async () => ((await get(f, 'paused-19', true)) === '19' ? true : undefined));
  assert.equal(await get(f, 'paused-0'), '0');
});

test('leases: keep-alives on a follower reach the leader; only the leader expires, everywhere', async () => {
  const leader = await eventually('a leader', () => agreedLeader(c.running()));
  const st = await endpointStatus(c.endpoints());
  const follower = st.find((s) => BigInt(s.Status.header.member_id) !== leader)!.Endpoint;
  const other = st.find((s) => BigInt(s.Status.header.member_id) !== leader && s.Endpoint !== follower)!.Endpoint;
  // The minimum TTL is 1.5 x the election timeout (500 ms): a 2 s lease stays 2 s.
  const grant = await v3(follower, '/v3/lease/grant', { TTL: 2 });
  await v3(follower, '/v3/kv/put', { key: Buffer.from('leased').toString('base64'), value: 'eA==', lease: grant.ID });
  for (let i = 0; i < 6; i++) {
    const ka = await v3(follower, '/v3/lease/keepalive', { ID: grant.ID });
    assert.equal(Number(ka.result.TTL), 2, 'renewed by the leader through the follower');
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(await get(other, 'leased'), 'x', 'kept alive for 3 s, longer than its TTL');
  // No more keep-alives: the leader revokes it and every member deletes the key.
  await eventually('the lease expires', async () => ((await get(other, 'leased')) === undefined ? true : undefined), 10_000);
  assert.equal(await get(follower, 'leased', true), undefined);
});

test('the peer port: cluster ID checked on every request, malformed batches refused, members listed', async () => {
  const m = c.members.find((x) => x.server !== undefined)!;
  const members = await (await fetch(`${m.peerUrl}/members`)).json() as { id: string; name: string }[];
  assert.deepEqual(members.map((x) => x.name).sort(), ['m0', 'm1', 'm2']);
  const cid = (await fetch(`${m.peerUrl}/members`)).headers.get('x-etcd-cluster-id')!;
  assert.match(cid, /^[0-9a-f]+$/);
  // A wrong cluster ID: 412, nothing stepped (a vote request for a huge term would depose the leader).
  const { encodeBatch } = await import('../../src/core/rafthttp/codec.js');
  const vote = encodeBatch([{ type: 'vote', from: 1n, to: BigInt('0x' + members[0]!.id), term: 1e9, lastIndex: 1e9, lastTerm: 1e9, transfer: true }]);
  const before = await endpointStatus(c.endpoints());
  const wrong = await fetch(`${m.peerUrl}/raft`, { method: 'POST', body: vote, headers: { 'x-etcd-cluster-id': 'deadbeef' } });
  assert.equal(wrong.status, 412);
  const none = await fetch(`${m.peerUrl}/raft/probing`);
  assert.equal(none.status, 412, 'no header at all: refused too');
  const garbage = await fetch(`${m.peerUrl}/raft`, { method: 'POST', body: Buffer.from([0, 0, 0, 1, 99]), headers: { 'x-etcd-cluster-id': cid } });
  assert.equal(garbage.status, 400);
  const after = await endpointStatus(c.endpoints());
  assert.deepEqual(after.map((s) => s.Status.raftTerm), before.map((s) => s.Status.raftTerm), 'no term change');
  const probe = await fetch(`${m.peerUrl}/raft/probing`, { headers: { 'x-etcd-cluster-id': cid } });
  assert.equal(probe.status, 200);
});
