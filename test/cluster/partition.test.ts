// A partition: the leader's peer traffic is cut both ways (HTTP proxies in front of every peer
// port, test/helpers/ourcluster.ts). The majority elects a new leader and keeps accepting writes;
// the cut-off member stops serving linearizable reads (check-quorum makes it step down); once the
// network heals it follows the new leader, catches up, and all members hold the same data.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, endpointStatus, eventually, get, hashKV, put } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3, { partitionable: true });
});
after(async () => {
  await c?.stop();
});

test('the leader cut off: the majority moves on, the old leader stops serving, then catches up', async () => {
  const all = c.members.map((m) => m.endpoint);
  const leader = await eventually('a leader', () => agreedLeader(all));
  const st = await endpointStatus(all.join(','));
  const li = all.indexOf(st.find((s) => BigInt(s.Status.header.member_id) === leader)!.Endpoint);
  const rest = all.filter((_, i) => i !== li);
  await put(all[li]!, 'before-cut', '1');
  await c.partition(li);
  const nu = await eventually('a new leader in the majority', async () => {
    const l = await agreedLeader(rest);
    return l !== undefined && l !== leader ? l : undefined;
  });
  assert.notEqual(nu, leader);
  let rev = 0;
  for (let k = 0; k < 20; k++) rev = await put(rest[k % 2]!, `cut-${k}`, String(k));
  // The isolated member: a linearizable read cannot be confirmed by a quorum.
  await assert.rejects(get(all[li]!, 'cut-0'), 'no linearizable read without a quorum');
  assert.equal(await get(all[li]!, 'cut-0', true), undefined, 'it has not seen the majority\'s writes');
  // It stepped down (check-quorum) and knows no leader: /health says so, as etcd's.
  const health = await fetch(`http://${all[li]!}/health`);
  assert.equal(health.status, 503);
  assert.equal(((await health.json()) as { health: string }).health, 'false');
  c.heal();
  await eventually('the old leader catches up', async () => ((await get(all[li]!, 'cut-19', true)) === '19' ? true : undefined));
  assert.equal(await get(all[li]!, 'cut-5'), '5');
  const after = await eventually('one leader again', () => agreedLeader(all));
  assert.equal(after, nu, 'the majority\'s leader stays (pre-vote: the returning member does not depose it)');
  const hashes = await Promise.all(all.map((e) => eventually(`hashkv on ${e}`, () => hashKV(e, rev))));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, JSON.stringify(hashes));
});
