// A member down while the others write far more than the leader keeps in its log
// (--snapshot-count 20, --experimental-snapshot-catchup-entries 10) can only catch up by a
// snapshot: the leader streams its data file over the peer port and the member installs it,
// then follows the log again. Its watchers and leases come with the data.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, endpointStatus, eventually, get, hashKV, put, v3 } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3, { extraArgs: ['--snapshot-count', '20', '--experimental-snapshot-catchup-entries', '10'] });
});
after(async () => {
  await c?.stop();
});

test('a member behind by more than the in-memory log catches up by snapshot', async () => {
  const leader = await eventually('a leader', () => agreedLeader(c.running()));
  const st = await endpointStatus(c.endpoints());
  const fi = c.members.findIndex((m) => m.endpoint === st.find((s) => BigInt(s.Status.header.member_id) !== leader)!.Endpoint);
  await put(c.members[fi]!.endpoint, 'before', 'x');
  await c.kill9(fi);
  const lease = await v3(c.running()[0]!, '/v3/lease/grant', { TTL: 600 });
  let rev = 0;
  for (let k = 0; k < 150; k++) rev = await put(c.running()[k % 2]!, `snap-${k}`, `v${k}`);
  await v3(c.running()[0]!, '/v3/kv/put', { key: Buffer.from('leased').toString('base64'), value: 'eA==', lease: lease.ID });
  rev++;
  await c.restart(fi);
  const f = c.members[fi]!.endpoint;
  await eventually('caught up', async () => ((await get(f, 'leased', true)) === 'x' ? true : undefined));
  assert.equal(await get(f, 'snap-0', true), 'v0');
  assert.equal(await get(f, 'before', true), 'x');
  const hashes = await Promise.all(c.running().map((e) => hashKV(e, rev)));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, JSON.stringify(hashes));
  // It came by snapshot (etcd's counter on the receiver), and the round trips to peers are measured.
  const metrics = await (await fetch(`http://${f}/metrics`)).text();
  assert.match(metrics, /etcd_network_snapshot_receive_success\{From="[0-9a-f]+"\} [1-9]/);
  await eventually('a peer round trip recorded', async () => (/etcd_network_peer_round_trip_time_seconds_count\{To="[0-9a-f]+"\} [1-9]/.test(await (await fetch(`http://${f}/metrics`)).text()) ? true : undefined));
  // The lease came with the snapshot.
  const ttl = await v3(f, '/v3/lease/timetolive', { ID: lease.ID, keys: true });
  assert.equal(Number(ttl.grantedTTL), 600);
  // And it follows the log again afterwards.
  await put(c.running()[0]!, 'after-snap', 'y');
  assert.equal(await get(f, 'after-snap'), 'y');
  // A restart of the member that installed the snapshot replays its WAL from the snapshot marker.
  await c.kill9(fi);
  await c.restart(fi);
  assert.equal(await get(c.members[fi]!.endpoint, 'after-snap'), 'y');
});
