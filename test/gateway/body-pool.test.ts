// Large request bodies are read into reused buffers (src/http/v3gw/body.ts BodyPool). That is only
// safe if a decoded message shares no memory with its body: checked here on every kind of field
// (bytes with and without JSON escapes, large values, strings, numbers, enums, nested messages),
// and end to end through a real gateway, where a later put reuses an earlier put's body buffer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { GatewayCodec } from '../../src/gateway/index.js';
import { BodyPool } from '../../src/http/v3gw/body.js';
import { startGateway, type GatewayServer } from './harness.js';

const codec = new GatewayCodec();
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const big = randomBytes(300_000);

const BODIES: readonly (readonly [string, string])[] = [
  ['etcdserverpb.PutRequest', JSON.stringify({ key: b64('k'), value: b64(big), lease: '7', prev_kv: true })],
  // base64 with an escaped slash: decoded from the unescaped text, not the raw bytes.
  ['etcdserverpb.PutRequest', `{"key":"${b64('a?b>c').replace(/\//g, '\\/')}","value":"${b64(Buffer.from([0xff, 0xfe, 0xfd, 0xfc])).replace(/\//g, '\\/')}"}`],
  ['etcdserverpb.RangeRequest', JSON.stringify({ key: b64('a'), range_end: b64('z'), limit: 10, sort_order: 'DESCEND', sortTarget: 2, min_mod_revision: '3' })],
  ['etcdserverpb.TxnRequest', JSON.stringify({
    compare: [{ key: b64('c'), target: 'VALUE', result: 'EQUAL', value: b64(big.subarray(0, 70_000)) }, { key: b64('d'), version: '4' }],
    success: [{ request_put: { key: b64('s'), value: b64(big.subarray(1000, 100_000)) } }, { requestRange: { key: b64('r') } }],
    failure: [{ request_delete_range: { key: b64('f'), prev_kv: true } }],
  })],
  ['etcdserverpb.AuthUserAddRequest', '{"name":"us\\u00e9r\\n","password":"p\\"w","options":{"no_password":false}}'],
  ['etcdserverpb.AuthRoleGrantPermissionRequest', JSON.stringify({ name: 'role', perm: { permType: 'READWRITE', key: b64('p/'), range_end: b64('p0') } })],
  ['etcdserverpb.LeaseGrantRequest', '{"TTL":"60","ID":12345}'],
];

test('a decoded message shares no memory with its body: wiping the body changes nothing', () => {
  for (const [type, text] of BODIES) {
    const body = Buffer.from(text);
    const msg = codec.decodeBody(type, body);
    const reference = codec.decodeBody(type, Buffer.from(text));
    body.fill(0x41);
    assert.deepEqual(msg, reference, `${type}: ${text.slice(0, 80)}`);
  }
});

test('the pool reuses large buffers, never small ones, within its byte bound, and empties when idle', async () => {
  const pool = new BodyPool(1024, 10_000, 50);
  const small = pool.take(100);
  pool.release(small);
  // Nor any buffer it did not hand out (a slice of Node's shared pool above all).
  pool.release(Buffer.allocUnsafe(100).subarray(0, 0));
  pool.release(Buffer.from(Buffer.allocUnsafe(10).buffer));
  pool.release(Buffer.allocUnsafeSlow(2000));
  assert.equal(pool.heldBytes, 0);
  const a = pool.take(4000);
  a.fill(1);
  pool.release(a);
  assert.equal(pool.heldBytes, 4000);
  // A smaller body gets the same memory; a larger one a new buffer.
  const b = pool.take(3000);
  assert.equal(b.buffer, a.buffer);
  assert.equal(b.length, 3000);
  assert.equal(pool.heldBytes, 0);
  const c = pool.take(5000);
  assert.notEqual(c.buffer, a.buffer);
  pool.release(b);
  pool.release(c);
  assert.equal(pool.heldBytes, 9000);
  // Past the bound, released buffers are left to the garbage collector; a second release is ignored.
  pool.release(pool.take(20_000));
  pool.release(c);
  assert.equal(pool.heldBytes, 9000);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(pool.heldBytes, 0, 'emptied after idling');
});

let gw: GatewayServer;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw?.close();
});

async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(gw.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const json = await r.json() as Record<string, unknown>;
  assert.equal(r.status, 200, JSON.stringify(json).slice(0, 300));
  return json;
}

test('through the gateway: values put with reused body buffers all read back intact', async () => {
  const values = [randomBytes(1 << 20), randomBytes(900_000), randomBytes(1 << 20), randomBytes(500_000)];
  // One after another (each body buffer back in the pool before the next put), then at once.
  for (let i = 0; i < values.length; i++) await post('/v3/kv/put', { key: b64(`pool/${i}`), value: b64(values[i]!) });
  await Promise.all(values.map((v, i) => post('/v3/kv/put', { key: b64(`pool/c${i}`), value: b64(Buffer.concat([v, Buffer.from([i])])) })));
  for (let i = 0; i < values.length; i++) {
    for (const [key, want] of [[`pool/${i}`, values[i]!], [`pool/c${i}`, Buffer.concat([values[i]!, Buffer.from([i])])]] as const) {
      const r = await post('/v3/kv/range', { key: b64(key) });
      const kvs = r.kvs as { value: string }[];
      assert.ok(Buffer.from(kvs[0]!.value, 'base64').equals(want), `${key} reads back as written`);
    }
  }
});
