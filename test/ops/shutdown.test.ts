// Graceful shutdown of the real process: SIGTERM during a gRPC write load ends watch streams
// cleanly (gRPC status OK, the /v3/watch response ends), exits 0, and after a restart on the same
// data dir every acknowledged write is there. A second signal exits at once with status 1.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { KVClient, PutRequest, RangeRequest, WatchClient, WatchRequest, type RangeResponse, type WatchResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { HealthCheckResponse_ServingStatus as Serving, HealthClient, type HealthCheckResponse } from '../../src/gen/grpc/health/v1/health.js';
import { makeTempDir, removeTempDir, startOurServer } from '../helpers/procs.js';

const b = (s: string) => Buffer.from(s);
const WORKERS = 16;

test('SIGTERM during a write load: watches end cleanly, exit 0, no acknowledged write lost', async (t) => {
  const dataDir = await makeTempDir('shutdown-');
  t.after(() => removeTempDir(dataDir));
  const srv = await startOurServer({ dataDir });
  t.after(() => srv.kill9());

  const clients = [0, 1].map(() => new KVClient(srv.endpoint, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const watcher = new WatchClient(srv.endpoint, grpc.credentials.createInsecure());
  const health = new HealthClient(srv.endpoint, grpc.credentials.createInsecure());
  t.after(() => {
    for (const c of clients) c.close();
    watcher.close();
    health.close();
  });

  // A grpc.health.v1 Watch: SERVING now, NOT_SERVING at shutdown, then the stream ends.
  const healthWatch = health.watch({ service: '' });
  const healthSeen: Serving[] = [];
  healthWatch.on('data', (r: HealthCheckResponse) => healthSeen.push(r.status));
  healthWatch.on('error', () => undefined);
  const healthStatus = new Promise<grpc.StatusObject>((resolve) => healthWatch.on('status', resolve));

  // A gRPC watch stream and a gateway /v3/watch stream, both open when the signal comes.
  const watch = watcher.watch();
  const watchStatus = new Promise<grpc.StatusObject>((resolve) => watch.on('status', resolve));
  const watchError = new Promise<Error>((resolve) => watch.on('error', resolve));
  const created = new Promise<void>((resolve) => watch.on('data', (r: WatchResponse) => { if (r.created) resolve(); }));
  watch.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('k'), rangeEnd: b('l') } } }));
  await created;
  const httpWatch = await request(`${srv.clientUrl}/v3/watch`, { method: 'POST', body: JSON.stringify({ create_request: { key: b('k').toString('base64') } }) });
  const httpEnd = new Promise<string>((resolve, reject) => {
    let text = '';
    httpWatch.body.on('data', (c: Buffer) => { text += c.toString(); });
    httpWatch.body.on('end', () => resolve(text));
    httpWatch.body.on('error', reject);
  });

  const acked = new Map<string, string>();
  let stop = false;
  let failures = 0;
  const worker = async (w: number): Promise<void> => {
    const c = clients[w % clients.length]!;
    for (let i = 0; !stop; i++) {
      const key = `k/${w}/${i}`;
      const value = `v${i}`;
      try {
        await new Promise<void>((resolve, reject) => c.put(PutRequest.fromPartial({ key: b(key), value: b(value) }), (err) => (err ? reject(err) : resolve())));
        acked.set(key, value);
      } catch {
        failures++;
        return; // the server is going away: this worker is done
      }
    }
  };
  const load = Array.from({ length: WORKERS }, (_, w) => worker(w));
  while (acked.size < 300) await new Promise((r) => setTimeout(r, 10));

  const signaledAt = Date.now();
  process.kill(srv.pid, 'SIGTERM');
  const exit = await srv.exited;
  const tookMs = Date.now() - signaledAt;
  stop = true;
  await Promise.all(load);
  assert.deepEqual(exit, { code: 0, signal: null }, 'exit status 0');
  assert.ok(tookMs < 4000, `no stream held the drain (took ${tookMs} ms)`);

  const status = await Promise.race([watchStatus, watchError.then((e) => ({ code: -1, details: e.message }))]);
  assert.equal(status.code, grpc.status.OK, `the gRPC watch ended with OK (got ${JSON.stringify(status)})`);
  assert.equal((await healthStatus).code, grpc.status.OK);
  assert.deepEqual(healthSeen, [Serving.SERVING, Serving.NOT_SERVING]);
  const httpText = await httpEnd;
  assert.match(httpText, /"created":true/, 'the /v3/watch response ended normally');

  const again = await startOurServer({ dataDir });
  t.after(() => again.stop());
  const kv = new KVClient(again.endpoint, grpc.credentials.createInsecure());
  t.after(() => kv.close());
  const all = await new Promise<RangeResponse>((resolve, reject) =>
    kv.range(RangeRequest.fromPartial({ key: b('k/'), rangeEnd: b('k0') }), (err, r) => (err ? reject(err) : resolve(r))));
  const stored = new Map(all.kvs.map((x) => [Buffer.from(x.key).toString(), Buffer.from(x.value).toString()]));
  let lost = 0;
  // Keys are unique per worker and index: each stored value must be exactly the acknowledged one.
  for (const [k, v] of acked) if (stored.get(k) !== v) lost++;
  assert.equal(lost, 0, `${lost} of ${acked.size} acknowledged writes lost`);
  t.diagnostic(`${acked.size} acknowledged writes, ${failures} workers refused at shutdown, exit after ${tookMs} ms`);
});

test('a second SIGTERM while draining exits at once with status 1', async (t) => {
  const srv = await startOurServer();
  t.after(() => srv.kill9());
  // An HTTP request whose body never completes keeps the drain waiting.
  const sock = connect(Number(srv.endpoint.split(':')[1]), '127.0.0.1');
  t.after(() => sock.destroy());
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.write('POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"key":');
  await new Promise((r) => setTimeout(r, 200));
  process.kill(srv.pid, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const first = await Promise.race([srv.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 0))]);
  assert.equal(first, 'running', 'still draining after the first signal');
  const at = Date.now();
  process.kill(srv.pid, 'SIGTERM');
  const exit = await srv.exited;
  assert.deepEqual(exit, { code: 1, signal: null });
  assert.ok(Date.now() - at < 2000, 'the second signal did not wait for the drain');
});

test('an HTTP request in flight at SIGTERM is answered (Connection: close), then the process exits 0', async (t) => {
  const srv = await startOurServer();
  t.after(() => srv.kill9());
  const sock = connect(Number(srv.endpoint.split(':')[1]), '127.0.0.1');
  t.after(() => sock.destroy());
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  const body = JSON.stringify({ key: b('drained').toString('base64'), value: b('yes').toString('base64') });
  sock.write(`POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
  await new Promise((r) => setTimeout(r, 200));
  process.kill(srv.pid, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  let answer = '';
  sock.on('data', (c: Buffer) => { answer += c.toString(); });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.write(body.slice(5));
  await closed;
  assert.match(answer, /^HTTP\/1\.1 200 /, `answered: ${answer}`);
  assert.match(answer, /\r\nconnection: close\r\n/i);
  assert.match(answer, /"revision":"2"/);
  assert.deepEqual(await srv.exited, { code: 0, signal: null });
});
