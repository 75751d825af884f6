// The peer stream (src/core/rafthttp/stream.ts) in a 3-member cluster of real processes: once the
// streams are up, raft traffic goes over them and not by the pipeline (the members' own
// per-channel counters say so, and etcd's per-peer byte counters agree); a SIGKILLed follower
// redials after its restart, catches up and is served by a stream again; the stream handler
// refuses what etcd's refuses (wrong cluster, wrong target, unknown or malformed sender).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, endpointStatus, eventually, get, hashKV, put } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3);
});
after(async () => {
  await c?.stop();
});


/** name{labels} -> value of the counters this test reads, from a member's /metrics. */
async function peerCounters(endpoint: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^((?:etcd_gateway_peer_messages_sent_total|etcd_network_peer_(?:sent|received)_bytes_total|etcd_network_peer_(?:sent|received)_failures_total)\{[^}]*\}) (\S+)$/.exec(line);
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const delta = (a: Map<string, number>, b: Map<string, number>, key: string): number => (b.get(key) ?? 0) - (a.get(key) ?? 0);

async function leaderAndIds(): Promise<{ li: number; ids: string[] }> {
  const leader = await eventually('a leader', () => agreedLeader(c.running()));
  const st = await endpointStatus(c.endpoints());
  const ids = c.members.map((m) => BigInt(st.find((s) => s.Endpoint === m.endpoint)!.Status.header.member_id).toString(16));
  return { li: ids.indexOf(leader.toString(16)), ids };
}

/** Waits until the leader's messages to every follower go by stream (streams dial at start). */
async function streamsCarry(li: number, ids: string[]): Promise<void> {
  const leader = c.members[li]!.endpoint;
  await eventually('raft traffic on the streams only', async () => {
    const a = await peerCounters(leader);
    await put(leader, 'probe', String(Date.now()));
    const b = await peerCounters(leader);
    return ids.every((id, i) => i === li || (delta(a, b, `etcd_gateway_peer_messages_sent_total{To="${id}",channel="pipeline"}`) === 0 &&
      delta(a, b, `etcd_gateway_peer_messages_sent_total{To="${id}",channel="stream"}`) > 0)) ? true : undefined;
  });
}

test('replication runs over the streams: messages and bytes counted on them, none by the pipeline', async () => {
  const { li, ids } = await leaderAndIds();
  await streamsCarry(li, ids);
  const leader = c.members[li]!.endpoint;
  const followers = c.members.filter((_, i) => i !== li);
  const a = await peerCounters(leader);
  const fa = await Promise.all(followers.map((f) => peerCounters(f.endpoint)));
  let rev = 0;
  for (let k = 0; k < 100; k++) rev = await put(leader, `s-${k}`, 'x'.repeat(100));
  const b = await peerCounters(leader);
  const fb = await Promise.all(followers.map((f) => peerCounters(f.endpoint)));
  for (const [fi, f] of followers.entries()) {
    const id = ids[c.members.indexOf(f)]!;
    const stream = delta(a, b, `etcd_gateway_peer_messages_sent_total{To="${id}",channel="stream"}`);
    const pipeline = delta(a, b, `etcd_gateway_peer_messages_sent_total{To="${id}",channel="pipeline"}`);
    // At least one append per put (sequential puts: each is committed before the next).
    assert.ok(stream >= 100, `${f.name}: ${stream} messages on the stream`);
    assert.equal(pipeline, 0, `${f.name}: nothing by the pipeline`);
    // 100 entries of > 100 bytes went to it; what the follower counts as received from the leader
    // matches what the leader counts as sent (both sides of the same connection).
    const sent = delta(a, b, `etcd_network_peer_sent_bytes_total{To="${id}"}`);
    assert.ok(sent > 100 * 100, `${f.name}: ${sent} bytes sent`);
    const received = delta(fa[fi]!, fb[fi]!, `etcd_network_peer_received_bytes_total{From="${ids[li]}"}`);
    assert.ok(received >= sent * 0.8 && received <= sent * 1.2 + 4096, `${f.name} received ${received} of ${sent} bytes`);
  }
  for (const f of followers) assert.equal(await get(f.endpoint, 's-99', true), 'x'.repeat(100));
  const hashes = await Promise.all(c.running().map((e) => eventually(`hashkv on ${e}`, () => hashKV(e, rev))));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, JSON.stringify(hashes));
});

test('a SIGKILLed follower restarts, its streams come back, it catches up and is served by stream again', async () => {
  const { li, ids } = await leaderAndIds();
  const fi = (li + 1) % 3;
  const leader = c.members[li]!.endpoint;
  await c.kill9(fi);
  const k0 = await peerCounters(leader);
  for (let k = 0; k < 30; k++) await put(leader, `down-${k}`, String(k));
  const k1 = await peerCounters(leader);
  // While it is down its stream is gone: messages for it fall back to the pipeline (and fail).
  assert.ok(delta(k0, k1, `etcd_gateway_peer_messages_sent_total{To="${ids[fi]}",channel="pipeline"}`) > 0, 'pipeline used while the follower is down');
  await c.restart(fi);
  const back = c.members[fi]!.endpoint;
  await eventually('the restarted follower catches up', async () => ((await get(back, 'down-29', true)) === '29' ? true : undefined));
  await streamsCarry(li, ids);
  // And the restarted member's own stream to the leader works: its answers reach the leader by stream.
  const r0 = await peerCounters(back);
  for (let k = 0; k < 10; k++) await put(leader, `up-${k}`, String(k));
  const r1 = await peerCounters(back);
  assert.ok(delta(r0, r1, `etcd_gateway_peer_messages_sent_total{To="${ids[li]}",channel="stream"}`) >= 10, 'the follower answers by stream');
  assert.equal(delta(r0, r1, `etcd_gateway_peer_messages_sent_total{To="${ids[li]}",channel="pipeline"}`), 0);
  assert.equal(await get(back, 'up-9'), '9');
});

test('the stream handler refuses a wrong cluster ID, a wrong target, an unknown or malformed sender', async () => {
  const { li, ids } = await leaderAndIds();
  const m = c.members[li]!;
  const other = ids[(li + 1) % 3]!;
  const list = await (await fetch(`${m.listenPeerUrl}/members`)).json() as unknown[];
  assert.equal(list.length, 3);
  const clusterId = (await fetch(`${m.listenPeerUrl}/members`)).headers.get('x-etcd-cluster-id')!;
  const dial = async (from: string, headers: Record<string, string>): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${m.listenPeerUrl}/raft/stream/message/${from}`, { headers });
    return { status: res.status, body: await res.text() };
  };
  assert.deepEqual(await dial(other, { 'x-etcd-cluster-id': 'abc', 'x-server-from': other }), { status: 412, body: 'cluster ID mismatch\n' });
  assert.deepEqual(await dial(other, { 'x-etcd-cluster-id': clusterId, 'x-server-from': other, 'x-raft-to': '1234' }), { status: 412, body: 'to field mismatch\n' });
  assert.deepEqual(await dial('1234', { 'x-etcd-cluster-id': clusterId, 'x-server-from': '1234' }), { status: 404, body: 'error sender not found\n' });
  assert.deepEqual(await dial('not-hex', { 'x-etcd-cluster-id': clusterId }), { status: 400, body: 'invalid from\n' });
  // A well-formed dial is answered 200 with a link heartbeat (an empty frame) right away.
  const ctl = new AbortController();
  const res = await fetch(`${m.listenPeerUrl}/raft/stream/message/${other}`, {
    headers: { 'x-etcd-cluster-id': clusterId, 'x-server-from': other, 'x-raft-to': ids[li]! }, signal: ctl.signal,
  });
  assert.equal(res.status, 200);
  const first = await res.body!.getReader().read();
  assert.ok(first.value !== undefined && first.value.length >= 4, 'some bytes at once');
  assert.equal(Buffer.from(first.value.subarray(0, 4)).readUInt32BE(0), 0, 'a link heartbeat first');
  ctl.abort();
  // The dial above replaced that member's real stream; it redials and the cluster carries on.
  await streamsCarry(li, ids);
});
