// The v2 store over the embedded backend: the schema's keys are what v3 clients see, and writes
// raced against each other stay consistent (one txn each, guarded, retried).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RangeRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { startV2Server, type V2TestServer } from './harness.js';

let s: V2TestServer;
before(async () => { s = await startV2Server('/p2'); });
after(async () => { await s.close(); });

async function req(method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(s.url + path, { method, ...(body !== undefined ? { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}) });
  return { status: r.status, json: JSON.parse(await r.text()) as Record<string, unknown> };
}

test('values are stored raw under the configured prefix, with depth-encoded keys', async () => {
  assert.equal((await req('PUT', '/v2/keys/a/b', 'value=hello')).status, 201);
  const resp = await s.backend.range(RangeRequest.fromPartial({ key: Buffer.from('/p2/'), rangeEnd: Buffer.from('/p20') }));
  const kv = Object.fromEntries(resp.kvs.map((k) => [k.key.toString(), k.value.toString()]));
  assert.equal(kv['/p2/002/a/b'], 'hello');
  assert.equal(kv['/p2/001/a/'], '');
  assert.deepEqual(JSON.parse(kv['/p2/event']!), { action: 'set', key: '/a/b', dir: false });
});

test('one revision per write; X-Etcd-Index is the revision', async () => {
  const a = await fetch(`${s.url}/v2/keys/r`, { method: 'PUT', body: 'value=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const b = await fetch(`${s.url}/v2/keys/r?prevValue=1`, { method: 'PUT', body: 'value=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(Number(b.headers.get('x-etcd-index')), Number(a.headers.get('x-etcd-index')) + 1);
});

test('concurrent creates: exactly one wins', async () => {
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => req('PUT', '/v2/keys/race/k?prevExist=false', `value=${i}`)));
  assert.equal(results.filter((r) => r.status === 201).length, 1);
  assert.equal(results.filter((r) => r.status === 412).length, 9);
});

test('concurrent CAS increments lose no update', async () => {
  await req('PUT', '/v2/keys/ctr', 'value=0');
  const worker = async (): Promise<void> => {
    for (let done = 0; done < 5;) {
      const cur = (await req('GET', '/v2/keys/ctr')).json as { node: { value: string } };
      const r = await req('PUT', `/v2/keys/ctr?prevValue=${cur.node.value}`, `value=${Number(cur.node.value) + 1}`);
      if (r.status === 200) done++;
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  assert.equal(((await req('GET', '/v2/keys/ctr')).json as { node: { value: string } }).node.value, '15');
});

test('recursive delete removes the whole subtree in one revision', async () => {
  await req('PUT', '/v2/keys/t/a/b/c', 'value=1');
  await req('PUT', '/v2/keys/t/x', 'value=2');
  const d = await req('DELETE', '/v2/keys/t?recursive=true');
  assert.equal(d.status, 200);
  const resp = await s.backend.range(RangeRequest.fromPartial({ key: Buffer.from('/p2/'), rangeEnd: Buffer.from('/p20') }));
  assert.deepEqual(resp.kvs.map((k) => k.key.toString()).filter((k) => k.includes('/t')), []);
});
