// Gateway behaviour the differential test cannot show: size limits, and that a client going away
// closes its backend watch session at once.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { startGateway, type GatewayServer } from './harness.js';
import { rawHttp } from '../helpers/raw-http.js';

let s: GatewayServer;
before(async () => { s = await startGateway(); });
after(async () => { await s.close(); });

const post = async (path: string, body: string): Promise<{ status: number; text: string }> => {
  const r = await fetch(s.url + path, { method: 'POST', body });
  return { status: r.status, text: await r.text() };
};

test('a put over the gRPC receive limit is refused as etcd refuses it', async () => {
  const value = Buffer.alloc(2_100_000, 1).toString('base64');
  const r = await post('/v3/kv/put', `{"key":"YQ==","value":"${value}"}`);
  assert.equal(r.status, 429);
  assert.match(r.text, /^\{"error":"grpc: received message larger than max \(2100008 vs\. 2097152\)","message":".*","code":8\}$/);
});

test('a put over max-request-bytes reaches the backend check', async () => {
  const value = Buffer.alloc(1_600_000, 1).toString('base64');
  const r = await post('/v3/kv/put', `{"key":"YQ==","value":"${value}"}`);
  assert.deepEqual(r, { status: 400, text: '{"error":"etcdserver: request is too large","message":"etcdserver: request is too large","code":3}' });
});

test('a body far past every limit is drained, counted and refused', async () => {
  const r = await post('/v3/kv/range', 'x'.repeat(9 * 1024 * 1024));
  assert.equal(r.status, 429);
  assert.match(r.text, /"code":8/);
});

test('closing the HTTP request closes the watch session', async () => {
  const backend = s.backend;
  const original = backend.watch.bind(backend);
  let closed = 0;
  backend.watch = (out) => {
    const session = original(out);
    return { request: (r) => session.request(r), close: () => { closed++; session.close(); } };
  };
  try {
    const port = new URL(s.url).port;
    await new Promise<void>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/v3/watch', method: 'POST' }, (res) => {
        res.once('data', () => req.destroy());
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
      req.write('{"create_request":{"key":"YQ=="}}');
    });
    for (let i = 0; i < 50 && closed === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closed >= 1, true);
  } finally {
    backend.watch = original;
  }
});

test('a blocked Lock whose client hangs up stops waiting and leaves no waiter key', async () => {
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  const grant = async (): Promise<string> => (JSON.parse((await post('/v3/lease/grant', '{"TTL":60}')).text) as { ID: string }).ID;
  const [first, second] = [await grant(), await grant()];
  const held = await post('/v3/lock/lock', `{"name":"${b64('gone')}","lease":"${first}"}`);
  assert.equal(held.status, 200);
  const waiters = async (): Promise<number> => {
    const r = JSON.parse((await post('/v3/kv/range', `{"key":"${b64('gone/')}","range_end":"${b64('gone0')}","count_only":true}`)).text) as { count?: string };
    return Number(r.count ?? 0);
  };
  const port = new URL(s.url).port;
  const req = http.request({ host: '127.0.0.1', port, path: '/v3/lock/lock', method: 'POST' });
  req.on('error', () => undefined);
  req.end(`{"name":"${b64('gone')}","lease":"${second}"}`);
  for (let i = 0; i < 100 && await waiters() < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await waiters(), 2, 'the second Lock waits with its own key');
  req.destroy();
  for (let i = 0; i < 100 && await waiters() > 1; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await waiters(), 1, 'only the holder key is left');
});

test('a put whose client half-closes right after the request is answered and applied', async () => {
  const body = '{"key":"aGFsZg==","value":"eQ=="}';
  const answer = await rawHttp(s.url.slice('http://'.length), `POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`, true);
  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
  const r = JSON.parse((await post('/v3/kv/range', '{"key":"aGFsZg=="}')).text) as { kvs?: { value: string }[] };
  assert.equal(r.kvs?.[0]?.value, 'eQ==');
});
