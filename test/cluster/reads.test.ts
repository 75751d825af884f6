// Which reads of a cluster member are linearizable and which are local, as etcd: a Range or a
// read-only Txn is linearizable unless it asks to be serializable (for a Txn: every top-level range
// serializable); a v2 GET is local unless it has quorum=true. Shown on a follower: right after a
// write through the leader, linearizable reads see it; with the rest of the cluster frozen (no
// quorum), local reads still answer from the member's own state and linearizable ones do not.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, eventually, memberIndex, put, v3 } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3);
});
after(async () => {
  for (const i of [0, 1, 2]) {
    try {
      c?.resume(i);
    } catch {
      // not paused, or gone
    }
  }
  await c?.stop();
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString();

async function txnGet(endpoint: string, key: string, serializable: boolean, timeoutMs = 10_000): Promise<string | undefined> {
  const r = await v3(endpoint, '/v3/kv/txn', { success: [{ requestRange: { key: b64(key), serializable } }] }, timeoutMs);
  const kv = (r.responses?.[0]?.response_range?.kvs as { value?: string }[] | undefined)?.[0];
  return kv === undefined ? undefined : unb64(kv.value);
}

async function v2Get(endpoint: string, key: string, quorum: boolean, timeoutMs = 10_000): Promise<{ status: number; value?: string }> {
  const res = await fetch(`http://${endpoint}/v2/keys/${key}${quorum ? '?quorum=true' : ''}`, { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await res.json()) as { node?: { value?: string } };
  return { status: res.status, ...(body.node?.value !== undefined ? { value: body.node.value } : {}) };
}

async function roles(): Promise<{ leader: number; followers: number[] }> {
  const id = await eventually('a leader', () => agreedLeader(c.members.map((m) => m.endpoint)));
  const leader = await memberIndex(c, id);
  return { leader, followers: [0, 1, 2].filter((i) => i !== leader) };
}

test('on a follower, a read-only txn and a v2 quorum GET see a write the leader just answered', async () => {
  const { leader, followers } = await roles();
  const l = c.members[leader]!.endpoint;
  const f = c.members[followers[0]!]!.endpoint;
  for (let i = 0; i < 40; i++) {
    await put(l, 'lin/txn', `t${i}`);
    assert.equal(await txnGet(f, 'lin/txn', false), `t${i}`, `txn read ${i} on the follower`);
    const res = await fetch(`http://${l}/v2/keys/lin/v2`, { method: 'PUT', body: new URLSearchParams({ value: `v${i}` }) });
    assert.ok(res.status === 200 || res.status === 201, `v2 PUT: ${res.status}`);
    await res.text();
    assert.deepEqual(await v2Get(f, 'lin/v2', true), { status: 200, value: `v${i}` }, `v2 quorum GET ${i} on the follower`);
  }
});

test('a member without quorum answers local reads from its own state and holds linearizable ones', async () => {
  const { followers } = await roles();
  const m = followers[0]!;
  const e = c.members[m]!.endpoint;
  await put(e, 'local/k', 'before');
  // Every member has applied it once a linearizable read on each sees it.
  for (const o of c.members) await eventually('applied', async () => ((await txnGet(o.endpoint, 'local/k', false)) === 'before' ? true : undefined));
  const res = await fetch(`http://${e}/v2/keys/local/v2`, { method: 'PUT', body: new URLSearchParams({ value: 'v2-before' }) });
  assert.equal(res.status, 201);
  await res.text();
  await eventually('v2 write applied here', async () => ((await v2Get(e, 'local/v2', false)).value === 'v2-before' ? true : undefined));
  const others = [0, 1, 2].filter((i) => i !== m);
  for (const i of others) c.pause(i);
  try {
    assert.equal(await txnGet(e, 'local/k', true, 3000), 'before', 'a serializable txn answers');
    assert.deepEqual(await v2Get(e, 'local/v2', false, 3000), { status: 200, value: 'v2-before' }, 'a v2 GET answers locally');
    await assert.rejects(txnGet(e, 'local/k', false, 1500), 'a linearizable txn waits for a quorum');
    await assert.rejects(
      v2Get(e, 'local/v2', true, 1500).then((r) => {
        if (r.status !== 200) throw new Error(`status ${r.status}`);
        return r;
      }),
      'a v2 quorum GET does not answer from local state',
    );
  } finally {
    for (const i of others) c.resume(i);
  }
});
