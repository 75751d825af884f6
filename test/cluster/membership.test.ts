// Membership through conf-change entries on a 3-member cluster of ours, driven by etcdctl (gRPC),
// the v3 JSON gateway and /v2/members: add a 4th member as learner, start it joining with
// --initial-cluster-state existing, promote it, remove a member; etcd's errors on the way.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { etcdctl } from '../helpers/procs.js';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, endpointStatus, eventually, get, parseJsonBig, put, v3 } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3);
});
after(async () => {
  await c?.stop();
});

interface MemberJson { ID: string | number; name?: string; peerURLs: string[]; clientURLs?: string[]; isLearner?: boolean }
const list = async (ep: string): Promise<MemberJson[]> => {
  const r = await etcdctl(ep, ['member', 'list', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (parseJsonBig(r.stdout) as { members: MemberJson[] }).members;
};
const hexId = (id: string | number): string => BigInt(id).toString(16);

test('add a learner, join it, promote it, remove a member; etcd\'s errors', async () => {
  await eventually('a leader', () => agreedLeader(c.running()));
  const ep = c.running()[1]!;
  const m3 = await c.prepare('m3');

  // Members must have been connected for 5 s (etcd's HealthInterval) before a change.
  const add = await eventually('the learner added', async () => {
    const r = await etcdctl(ep, ['member', 'add', 'm3', `--peer-urls=${m3.peerUrl}`, '--learner']);
    if (r.code !== 0) assert.match(r.stderr, /etcdserver: unhealthy cluster/);
    return r.code === 0 ? r : undefined;
  });
  assert.match(add.stdout, /Member +[0-9a-f]+ added to cluster +[0-9a-f]+/);
  assert.match(add.stdout, new RegExp(`ETCD_INITIAL_CLUSTER="[^"]*m3=${m3.peerUrl}`));
  // A peer URL in use is refused; so is a second learner.
  const taken = await etcdctl(ep, ['member', 'add', 'dup', `--peer-urls=${c.members[0]!.peerUrl}`]);
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr, /etcdserver: Peer URLs already exists/);
  const second = await etcdctl(ep, ['member', 'add', 'm4', '--peer-urls=http://127.0.0.1:9', '--learner']);
  assert.match(second.stderr, /etcdserver: too many learner members in cluster/);
  let members = await list(c.running()[0]!);
  assert.equal(members.length, 4);
  const learner = members.find((m) => m.peerURLs[0] === m3.peerUrl)!;
  assert.equal(learner.isLearner, true);
  assert.equal(learner.name ?? '', '', 'not started: no name yet');

  // The new member joins: it learns its ID and the cluster from the others, then the log.
  await c.join(m3);
  await put(ep, 'while-learner', 'x');
  await eventually('the learner replicates', async () => ((await get(m3.endpoint, 'while-learner', true)) === 'x' ? true : undefined));
  members = await list(ep);
  assert.equal(members.find((m) => hexId(m.ID) === hexId(learner.ID))?.name, 'm3', 'it published its name');
  // A learner is not ready (etcd 3.5's /readyz non_learner check); its status says learner.
  const notReady = await fetch(`http://${m3.endpoint}/readyz?verbose`);
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /\[-\]non_learner failed: not supported for learner/);
  assert.equal((await endpointStatus(m3.endpoint))[0]!.Status.isLearner, true);

  // Promoting a voter is refused; promoting the caught-up learner works (through a follower too).
  const notLearner = await etcdctl(ep, ['member', 'promote', hexId(members.find((m) => !m.isLearner)!.ID)]);
  assert.match(notLearner.stderr, /etcdserver: can only promote a learner member/);
  const promoted = await eventually('promoted', async () => {
    const r = await etcdctl(ep, ['member', 'promote', hexId(learner.ID)]);
    return r.code === 0 ? r.stdout : undefined;
  });
  assert.match(promoted, /Member +[0-9a-f]+ promoted in cluster +[0-9a-f]+/);
  members = await list(m3.endpoint);
  assert.equal(members.filter((m) => m.isLearner).length, 0);
  assert.deepEqual(members.find((m) => m.name === 'm3')?.clientURLs, [`http://${m3.endpoint}`]);

  assert.equal((await fetch(`http://${m3.endpoint}/readyz`)).status, 200, 'a voter now');
  // Now a voter: its writes commit and are read linearizably elsewhere.
  await put(m3.endpoint, 'from-m3', 'y');
  assert.equal(await get(c.members[0]!.endpoint, 'from-m3'), 'y');

  // Update a member's peer URLs through the v3 gateway (same URLs: a no-op change), then remove a
  // follower through /v2/members; unknown members are etcd's errors.
  const st = await endpointStatus(c.endpoints());
  const leader = BigInt(st[0]!.Status.leader);
  const victim = st.find((s) => BigInt(s.Status.header.member_id) !== leader && s.Endpoint !== m3.endpoint)!;
  const victimId = BigInt(victim.Status.header.member_id);
  const victimMember = c.members.find((m) => m.endpoint === victim.Endpoint)!;
  const upd = await v3(m3.endpoint, '/v3/cluster/member/update', { ID: victimId.toString(), peerURLs: [victimMember.peerUrl] });
  assert.equal((upd.members as unknown[]).length, 4);
  const missing = await etcdctl(ep, ['member', 'remove', 'abcdef']);
  assert.match(missing.stderr, /etcdserver: member not found/);
  const keep = c.members.find((m) => m !== victimMember && m.server !== undefined)!;
  const del = await fetch(`http://${keep.endpoint}/v2/members/${victimId.toString(16)}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  members = await list(keep.endpoint);
  assert.equal(members.length, 3);
  assert.ok(!members.some((m) => BigInt(m.ID) === victimId));
  // The removed member is refused on the peer port from now on (410, as etcd).
  const cid = (await fetch(`${keep.peerUrl}/members`)).headers.get('x-etcd-cluster-id')!;
  const gone = await fetch(`${keep.peerUrl}/raft/probing`, { headers: { 'x-etcd-cluster-id': cid, 'x-server-from': victimId.toString(16) } });
  assert.equal(gone.status, 410);
  // And it stops by itself, as etcd's does: it applied its own removal or a peer answered it 410.
  const exit = await Promise.race([victimMember.server!.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000))]);
  assert.deepEqual(exit, { code: 0, signal: null }, 'the removed member exits 0');
  await c.kill9(c.members.indexOf(victimMember));
  // Three voters left: writes still commit everywhere.
  await put(keep.endpoint, 'after-remove', 'z');
  for (const e of c.running()) assert.equal(await get(e, 'after-remove'), 'z');
});
