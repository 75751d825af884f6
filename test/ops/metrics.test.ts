// /metrics on the client port: scraped and parsed as Prometheus text; etcd's series move as
// writes, reads, watches and failing calls arrive over gRPC and the JSON gateway.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import {
  DeleteRangeRequest, KVClient, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchClient, WatchRequest,
  type RangeResponse, type WatchResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import { createMetrics } from '../../src/metrics/index.js';
import { startGateway, type GatewayServer } from '../gateway/harness.js';
import { parseProm, sample, type Sample } from '../helpers/prom.js';

const b = (s: string) => Buffer.from(s);
const b64 = (s: string) => Buffer.from(s).toString('base64');

let srv: GatewayServer;
let kv: KVClient;
let watchClient: WatchClient;

before(async () => {
  srv = await startGateway();
  const endpoint = srv.url.replace('http://', '');
  kv = new KVClient(endpoint, grpc.credentials.createInsecure());
  watchClient = new WatchClient(endpoint, grpc.credentials.createInsecure());
});
after(async () => {
  kv.close();
  watchClient.close();
  await srv.close();
});

async function scrape(): Promise<Sample[]> {
  const res = await request(`${srv.url}/metrics`);
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseProm(await res.body.text());
}

function unary<Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const kvPut = { grpc_service: 'etcdserverpb.KV', grpc_method: 'Put', grpc_type: 'unary' };

test('writes, reads and errors move the mvcc, server, disk and gRPC series', async () => {
  const s0 = await scrape();
  assert.equal(sample(s0, 'etcd_server_has_leader'), 1);
  assert.equal(sample(s0, 'etcd_server_is_leader'), 1);
  assert.equal(sample(s0, 'etcd_server_proposals_pending'), 0);
  assert.ok(sample(s0, 'etcd_mvcc_db_total_size_in_bytes') > 0);
  assert.ok(sample(s0, 'process_resident_memory_bytes') > 0, 'default process metrics are exposed');

  const put = (k: string) => unary(kv.put.bind(kv), PutRequest.fromPartial({ key: b(k), value: b('v') }));
  await put('m/a');
  await put('m/b');
  await put('m/a');
  await unary(kv.deleteRange.bind(kv), DeleteRangeRequest.fromPartial({ key: b('m/b') }));
  await unary(kv.range.bind(kv), RangeRequest.fromPartial({ key: b('m/'), rangeEnd: b('m0') }));
  await unary(kv.txn.bind(kv), TxnRequest.fromPartial({
    success: [RequestOp.fromPartial({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b('m/c'), value: b('t') }) } })],
  }));
  await assert.rejects(put(''), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  for (const k of ['m/d', 'm/e']) {
    const res = await request(`${srv.url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(k), value: b64('h') }) });
    assert.equal(res.statusCode, 200);
    await res.body.text();
  }
  const last = await unary<RangeRequest, RangeResponse>(kv.range.bind(kv), RangeRequest.fromPartial({ key: b('m/a') }));
  // Writes are answered at apply; their backend commits land just after. Status waits for them.
  const st = await request(`${srv.url}/v3/maintenance/status`, { method: 'POST', body: '{}' });
  assert.equal(st.statusCode, 200);
  await st.body.text();

  const s1 = await scrape();
  const delta = (name: string, labels: Record<string, string> = {}) => sample(s1, name, labels) - sample(s0, name, labels);
  assert.equal(delta('etcd_mvcc_put_total'), 6, '3 gRPC puts, 1 in a txn, 2 through the gateway');
  assert.equal(delta('etcd_mvcc_delete_total'), 1);
  assert.equal(delta('etcd_mvcc_txn_total'), 1);
  assert.ok(delta('etcd_mvcc_range_total') >= 2);
  assert.equal(delta('etcd_server_proposals_applied_total'), 7, '6 writes and the delete');
  assert.equal(delta('etcd_server_proposals_committed_total'), 7);
  assert.equal(sample(s1, 'etcd_debugging_mvcc_current_revision'), Number(last.header!.revision));
  assert.equal(sample(s1, 'etcd_debugging_mvcc_compact_revision'), -1);
  assert.equal(sample(s1, 'etcd_debugging_mvcc_keys_total'), 4, 'm/a, m/c, m/d, m/e are live');
  assert.ok(delta('etcd_disk_wal_fsync_duration_seconds_count') >= 7, 'each write waited for one commit');
  // Backend commits fold: a commit asked for while one runs joins the next, so 7 writes take 1 to 7.
  const commits = delta('etcd_disk_backend_commit_duration_seconds_count');
  assert.ok(commits >= 1, `backend commits: ${commits}`);
  assert.equal(sample(s1, 'etcd_disk_wal_fsync_duration_seconds_bucket', { le: '8.192' }), sample(s1, 'etcd_disk_wal_fsync_duration_seconds_count'));
  assert.equal(sample(s1, 'grpc_server_started_total', kvPut), 4);
  assert.equal(sample(s1, 'grpc_server_handled_total', { ...kvPut, grpc_code: 'OK' }), 3);
  assert.equal(sample(s1, 'grpc_server_handled_total', { ...kvPut, grpc_code: 'InvalidArgument' }), 1);
  assert.equal(sample(s1, 'grpc_server_handled_total', { ...kvPut, grpc_code: 'NotFound' }), 0, 'every code is initialized, as go-grpc-prometheus does');
  assert.ok(delta('etcd_network_client_grpc_received_bytes_total') > 0);
  assert.ok(delta('etcd_network_client_grpc_sent_bytes_total') > 0);
});

test('watcher and watch stream gauges follow open watches (gRPC and /v3/watch)', async () => {
  // The v2 API's shared watch may already hold a watcher and a stream: count from the baseline.
  const s0 = await scrape();
  const watchers0 = sample(s0, 'etcd_debugging_mvcc_watcher_total');
  const streams0 = sample(s0, 'etcd_debugging_mvcc_watch_stream_total');

  const call = watchClient.watch();
  const created: WatchResponse[] = [];
  call.on('data', (r: WatchResponse) => { if (r.created) created.push(r); });
  call.on('error', () => undefined);
  for (const key of ['w/a', 'w/b']) {
    call.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b(key) } } }));
  }
  const http = await request(`${srv.url}/v3/watch`, { method: 'POST', body: JSON.stringify({ create_request: { key: b64('w/c') } }) });
  const first = await new Promise<string>((resolve) => http.body.once('data', (c: Buffer) => resolve(c.toString())));
  assert.match(first, /"created":true/);
  await until('two gRPC watchers created', async () => created.length === 2);

  const open = await scrape();
  assert.equal(sample(open, 'etcd_debugging_mvcc_watcher_total') - watchers0, 3);
  assert.equal(sample(open, 'etcd_debugging_mvcc_watch_stream_total') - streams0, 2);

  call.cancel();
  http.body.destroy();
  await until('watchers gone', async () => sample(await scrape(), 'etcd_debugging_mvcc_watch_stream_total') === streams0);
  const closed = await scrape();
  assert.equal(sample(closed, 'etcd_debugging_mvcc_watcher_total'), watchers0);
  const watch = { grpc_service: 'etcdserverpb.Watch', grpc_method: 'Watch', grpc_type: 'bidi_stream' };
  assert.equal(sample(closed, 'grpc_server_started_total', watch), 1);
  await until('the canceled watch counted as handled', async () =>
    sample(await scrape(), 'grpc_server_handled_total', { ...watch, grpc_code: 'Canceled' }) === 1);
});

test('v2 gateway metrics: requests by action and code, long polls, shared-watch fan-out', async () => {
  const m = createMetrics({ defaultMetrics: false });
  m.v2.request('set', 201);
  m.v2.request('set', 201);
  m.v2.request('get', 404);
  const endPoll = m.v2.longPollOpened();
  m.v2.longPollOpened();
  const shared = m.v2.sharedWatchOpened();
  shared.subscribed();
  shared.subscribed();
  shared.subscribed();
  shared.unsubscribed();
  let s = parseProm(await m.scrape());
  assert.equal(sample(s, 'etcd_gateway_v2_requests_total', { action: 'set', code: '201' }), 2);
  assert.equal(sample(s, 'etcd_gateway_v2_requests_total', { action: 'get', code: '404' }), 1);
  assert.equal(sample(s, 'etcd_gateway_v2_long_polls'), 2);
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watches'), 1);
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watch_subscribers'), 2);
  endPoll();
  endPoll(); // a second call is harmless
  shared.closed();
  s = parseProm(await m.scrape());
  assert.equal(sample(s, 'etcd_gateway_v2_long_polls'), 1);
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watches'), 0);
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watch_subscribers'), 0);
});

test('v2 metrics through the server: requests by action and code, open long polls, the shared watch', async () => {
  const v2 = (path: string, init?: RequestInit) => fetch(`${srv.url}/v2/keys${path}`, init).then(async (r) => { await r.text(); return r.status; });
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  // A label set appears once counted: absent means 0.
  const count = (s: Sample[], action: string, code: string) =>
    s.find((x) => x.name === 'etcd_gateway_v2_requests_total' && x.labels.action === action && x.labels.code === code)?.value ?? 0;
  const before = await scrape();
  assert.equal(await v2('/m/a', { method: 'PUT', body: 'value=1', headers: form }), 201);
  assert.equal(await v2('/m/a'), 200);
  assert.equal(await v2('/m/none'), 404);
  assert.equal(await v2('/m/a?prevExist=false', { method: 'PUT', body: 'value=2', headers: form }), 412);
  const ac = new AbortController();
  const poll = fetch(`${srv.url}/v2/keys/m/w?wait=true`, { signal: ac.signal }).then((r) => r.text());
  await until('a long poll open', async () => sample(await scrape(), 'etcd_gateway_v2_long_polls') === 1);
  let s = await scrape();
  assert.equal(count(s, 'set', '201') - count(before, 'set', '201'), 1);
  assert.equal(count(s, 'get', '200') - count(before, 'get', '200'), 1);
  assert.equal(count(s, 'get', '404') - count(before, 'get', '404'), 1);
  assert.equal(count(s, 'create', '412') - count(before, 'create', '412'), 1);
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watches'), 1);
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watch_subscribers'), 1);
  assert.equal(await v2('/m/w', { method: 'PUT', body: 'value=x', headers: form }), 201);
  assert.match(await poll, /"action":"set"/);
  await until('the long poll ended', async () => sample(await scrape(), 'etcd_gateway_v2_long_polls') === 0);
  s = await scrape();
  assert.equal(sample(s, 'etcd_gateway_v2_shared_watch_subscribers'), 0);
  assert.equal(count(s, 'watch', '200') - count(before, 'watch', '200'), 1);
  ac.abort();
});
