// TTL expiry on the embedded backend: leases really expire the nodes, a directory takes its children
// along, and waiters receive `expire` events (lease-driven for files, the store's sweeper for
// directories and sub-2 s TTLs).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RangeRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { startGateway } from '../gateway/harness.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';
import { startV2Server, type V2TestServer } from './harness.js';

let s: V2TestServer;
before(async () => { s = await startV2Server('/tt'); });
after(async () => { await s.close(); });

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
async function req(method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(s.url + path, { method, ...(body !== undefined ? { body, headers: FORM } : {}) });
  return { status: r.status, json: JSON.parse(await r.text()) as Record<string, unknown> };
}
async function v3Keys(part: string): Promise<string[]> {
  const resp = await s.backend.range(RangeRequest.fromPartial({ key: Buffer.from('/tt/'), rangeEnd: Buffer.from('/tt0') }));
  return resp.kvs.map((k) => k.key.toString()).filter((k) => k.includes(part));
}
async function until(pred: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
/** A long poll: resolves with the one event it returns. */
async function waitFor(path: string): Promise<Record<string, unknown>> {
  const r = await fetch(`${s.url}${path}`);
  return JSON.parse(await r.text()) as Record<string, unknown>;
}

test('a 2 s TTL file expires (lease), its waiter gets expire with prevNode.expiration', async () => {
  const w = waitFor('/v2/keys/f?wait=true');
  const p = await req('PUT', '/v2/keys/f?ttl=2', 'value=v');
  assert.equal(p.status, 201);
  const node = p.json.node as { ttl: number; expiration: string };
  assert.equal(node.ttl, 2);
  assert.match(node.expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const ev = await waitFor('/v2/keys/f?wait=true'); // skips nothing: next change is the expiry
  const first = await w;
  assert.equal(first.action, 'set');
  assert.equal(ev.action, 'expire');
  const prev = ev.prevNode as Record<string, unknown>;
  assert.equal(prev.value, 'v');
  assert.equal(prev.expiration, node.expiration);
  assert.equal(prev.ttl, undefined);
  assert.equal((await req('GET', '/v2/keys/f')).status, 404);
  assert.deepEqual(await v3Keys('/f'), []);
});

test('a directory with a 2 s TTL expires with its children, one expire event for watchers inside', async () => {
  await req('PUT', '/v2/keys/d?dir=true&ttl=2');
  await req('PUT', '/v2/keys/d/c', 'value=1');
  await req('PUT', '/v2/keys/d/sub/x', 'value=2');
  const ev = await waitFor('/v2/keys/d/sub/x?wait=true');
  assert.equal(ev.action, 'expire');
  assert.deepEqual((ev.node as Record<string, unknown>).key, '/d');
  assert.equal((ev.node as Record<string, unknown>).dir, true);
  assert.equal((await req('GET', '/v2/keys/d/c')).status, 404);
  assert.deepEqual(await v3Keys('/d'), []);
});

test('ttl=1 (below the 2 s lease minimum) expires after ~1 s via the sweeper', async () => {
  const t0 = Date.now();
  await req('PUT', '/v2/keys/one?ttl=1', 'value=1');
  await until(async () => (await req('GET', '/v2/keys/one')).status === 404, 3000);
  assert.ok(Date.now() - t0 < 1900, `took ${Date.now() - t0} ms`);
});

test('refresh keeps the value and resets the TTL; overwrite without ttl makes it permanent', async () => {
  await req('PUT', '/v2/keys/r?ttl=2', 'value=keep');
  const r = await req('PUT', '/v2/keys/r?refresh=true&prevExist=true&ttl=100');
  assert.equal(r.json.action, 'update');
  assert.equal((r.json.node as Record<string, unknown>).value, 'keep');
  await req('PUT', '/v2/keys/p?ttl=2', 'value=1');
  await req('PUT', '/v2/keys/p', 'value=2');
  await new Promise((res) => setTimeout(res, 3200));
  assert.equal((await req('GET', '/v2/keys/r')).status, 200);
  const p = await req('GET', '/v2/keys/p');
  assert.equal(p.status, 200);
  assert.equal((p.json.node as Record<string, unknown>).expiration, undefined);
});

test('a closed long poll ends its backend watch', async () => {
  const ac = new AbortController();
  const r = await fetch(`${s.url}/v2/keys/gone?wait=true`, { signal: ac.signal });
  assert.equal(r.status, 200);
  ac.abort();
  await new Promise((res) => setTimeout(res, 100));
  assert.equal((await req('PUT', '/v2/keys/gone', 'value=1')).status, 201);
});

test('a TTL directory written before a restart still expires with its children (the sweeper is re-armed)', async () => {
  const dir = await makeTempDir('ttl-restart-');
  try {
    let g = await startGateway(['--v2-prefix', '/tr'], dir);
    const put = (path: string, body?: string): Promise<Response> => fetch(g.url + path, { method: 'PUT', ...(body !== undefined ? { body, headers: FORM } : {}) });
    assert.equal((await put('/v2/keys/td?dir=true&ttl=3')).status, 201);
    assert.equal((await put('/v2/keys/td/child', 'value=1')).status, 201);
    await g.close();
    g = await startGateway(['--v2-prefix', '/tr'], dir);
    try {
      const ev = JSON.parse(await (await fetch(`${g.url}/v2/keys/td/child?wait=true`)).text()) as { action: string; node: { key: string; dir: boolean } };
      assert.deepEqual([ev.action, ev.node.key, ev.node.dir], ['expire', '/td', true]);
      assert.equal((await fetch(`${g.url}/v2/keys/td/child`)).status, 404);
      const stats = (await (await fetch(`${g.url}/v2/stats/store`)).json()) as { expireCount: number };
      assert.equal(stats.expireCount, 1);
    } finally {
      await g.close();
    }
  } finally {
    await removeTempDir(dir);
  }
});
