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

test('a plain set is one txn with no read first; a wrong guess about the path falls back to the planned write', async () => {
  const txns: boolean[] = [];
  const backend = s.backend;
  const txn = backend.txn.bind(backend);
  backend.txn = async (r, ctx) => {
    const resp = await txn(r, ctx);
    txns.push(resp.succeeded);
    return resp;
  };
  type Node = { key: string; value?: string; createdIndex: number; modifiedIndex: number; ttl?: number };
  type Answer = { action: string; node: Node; prevNode?: Node };
  const put = async (path: string, body: string): Promise<{ status: number; json: Answer; txns: boolean[] }> => {
    txns.length = 0;
    const r = await req('PUT', path, body);
    return { status: r.status, json: r.json as unknown as Answer, txns: [...txns] };
  };
  try {
    // The parent does not exist yet: the guess fails (its txn carries no read: its failure branch
    // would be in every guessed write's raft entry), then the path is read and the plan commits.
    const first = await put('/v2/keys/g/a', 'value=1');
    assert.equal(first.status, 201);
    assert.deepEqual(first.txns, [false, true, true]);
    const replaced = await put('/v2/keys/g/a', 'value=2');
    assert.equal(replaced.status, 200);
    assert.deepEqual(replaced.txns, [true], 'one txn, nothing read before it');
    assert.deepEqual(replaced.json.prevNode, { key: '/g/a', value: '1', createdIndex: first.json.node.createdIndex, modifiedIndex: first.json.node.modifiedIndex });
    assert.equal(replaced.json.node.createdIndex, replaced.json.node.modifiedIndex, 'a replaced file is a new node (birth marker)');
    const again = await put('/v2/keys/g/a', 'value=3');
    assert.equal(again.json.prevNode?.createdIndex, replaced.json.node.createdIndex);
    const sibling = await put('/v2/keys/g/b', 'value=4');
    assert.equal(sibling.status, 201);
    assert.deepEqual(sibling.txns, [true]);
    assert.equal(sibling.json.prevNode, undefined);
    // Wrong guesses answer what the planned write answers.
    const onDir = await put('/v2/keys/g', 'value=x');
    assert.equal(onDir.status, 403);
    assert.equal((onDir.json as unknown as { errorCode: number }).errorCode, 102);
    const underFile = await put('/v2/keys/g/a/c', 'value=x');
    assert.equal((underFile.json as unknown as { errorCode: number }).errorCode, 104);
    await put('/v2/keys/g/t', 'value=1&ttl=100');
    const dropsTtl = await put('/v2/keys/g/t', 'value=2');
    assert.equal(dropsTtl.status, 200);
    assert.deepEqual(dropsTtl.txns, [false, true, true], 'a node with a TTL is not the guessed state');
    assert.equal(dropsTtl.json.prevNode?.ttl !== undefined, true);
    assert.equal(((await req('GET', '/v2/keys/g/t')).json as unknown as Answer).node.ttl, undefined);
  } finally {
    backend.txn = txn;
  }
});
