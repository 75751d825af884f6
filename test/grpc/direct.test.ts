// The unary KV calls served off their HTTP/2 stream (src/grpc/direct.ts): real grpc-js clients
// get the same answers as before, a compressed request still goes through grpc-js, and every
// malformed request gets exactly the status and text grpc-js gives the same bytes on a method it
// serves itself (Compact): sent raw over node:http2 to both paths; answers and errors carry etcd
// 3.4's own headers and trailers (compared raw against a real etcd).
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { CompactionRequest, DeleteRangeRequest, KVClient, PutRequest, RangeRequest, TxnRequest } from '../../src/gen/etcdserverpb/rpc.js';
import type { RunningServer } from '../../src/server.js';
import { startServerWith } from '../gateway/harness.js';
import { grpcMessageDecode, grpcMessageEncode } from '../../src/util/grpc-message.js';
import { hasEtcd, makeTempDir, removeTempDir, startRealEtcd } from '../helpers/procs.js';
import { parseProm, sample } from '../helpers/prom.js';

let dir: string;
let srv: RunningServer & { url: string };
let kv: KVClient;
const b = (s: string): Buffer => Buffer.from(s);
const call = <T>(fn: (cb: (e: grpc.ServiceError | null, r: T) => void) => void): Promise<T> =>
  new Promise((res, rej) => fn((e, r) => (e ? rej(e) : res(r))));

before(async () => {
  dir = await makeTempDir('direct-');
  srv = await startServerWith(['--data-dir', dir, '--max-request-bytes', '10000']);
  kv = new KVClient(srv.url.replace('http://', ''), grpc.credentials.createInsecure());
});

after(async () => {
  kv.close();
  await srv.close();
  await removeTempDir(dir);
});

test('Put, Range, DeleteRange and Txn take the direct path and answer as before', async () => {
  const before = srv.grpc.directCalls;
  const put = await call<{ header?: { revision: bigint } }>((cb) => kv.put(PutRequest.fromPartial({ key: b('d1'), value: b('v1') }), cb));
  const put2 = await call<{ prevKv?: { value: Buffer } }>((cb) => kv.put(PutRequest.fromPartial({ key: b('d1'), value: b('v2'), prevKv: true }), cb));
  assert.equal(put2.prevKv?.value.toString(), 'v1');
  const got = await call<{ kvs: { value: Buffer; modRevision: bigint }[]; count: bigint }>((cb) => kv.range(RangeRequest.fromPartial({ key: b('d1') }), cb));
  assert.equal(got.kvs[0]!.value.toString(), 'v2');
  assert.equal(got.kvs[0]!.modRevision, put.header!.revision + 1n);
  const txn = await call<{ succeeded: boolean }>((cb) => kv.txn(TxnRequest.fromPartial({
    compare: [{ key: b('d1'), target: 3, result: 0, targetUnion: { $case: 'value', value: b('v2') } }],
    success: [{ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b('d2'), value: b('t') }) } }],
  }), cb));
  assert.equal(txn.succeeded, true);
  const del = await call<{ deleted: bigint }>((cb) => kv.deleteRange(DeleteRangeRequest.fromPartial({ key: b('d'), rangeEnd: b('e') }), cb));
  assert.equal(del.deleted, 2n);
  assert.equal(srv.grpc.directCalls - before, 5);
  // Errors keep etcd's codes and texts.
  await assert.rejects(call((cb) => kv.put(PutRequest.fromPartial({ key: b('x'), value: b('y'), lease: 424242n }), cb)),
    (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && e.details === 'etcdserver: requested lease not found');
  await assert.rejects(call((cb) => kv.range(RangeRequest.fromPartial({ key: b('x'), revision: 1_000_000n }), cb)),
    (e: grpc.ServiceError) => e.code === grpc.status.OUT_OF_RANGE && e.details === 'etcdserver: mvcc: required revision is a future revision');
});

test('the direct path counts its calls in grpc_server_started_total and grpc_server_handled_total', async () => {
  const counts = async (): Promise<{ started: number; ok: number; notFound: number }> => {
    const m = parseProm(await srv.metrics.scrape());
    const labels = { grpc_method: 'Put', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' };
    return {
      started: sample(m, 'grpc_server_started_total', labels),
      ok: sample(m, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }),
      notFound: sample(m, 'grpc_server_handled_total', { ...labels, grpc_code: 'NotFound' }),
    };
  };
  const c0 = await counts();
  await call((cb) => kv.put(PutRequest.fromPartial({ key: b('m'), value: b('1') }), cb));
  await call((cb) => kv.put(PutRequest.fromPartial({ key: b('m'), value: b('1'), lease: 99n }), cb)).catch(() => undefined);
  const c1 = await counts();
  assert.deepEqual({ started: c1.started - c0.started, ok: c1.ok - c0.ok, notFound: c1.notFound - c0.notFound }, { started: 2, ok: 1, notFound: 1 });
});

test('a gzip-compressed request is left to grpc-js, and answered', async () => {
  const gz = new KVClient(srv.url.replace('http://', ''), grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
  try {
    const before = srv.grpc.directCalls;
    await call((cb) => gz.put(PutRequest.fromPartial({ key: b('gz'), value: Buffer.alloc(4096, 0x61) }), cb));
    const r = await call<{ kvs: { value: Buffer }[] }>((cb) => gz.range(RangeRequest.fromPartial({ key: b('gz') }), cb));
    assert.equal(r.kvs[0]!.value.length, 4096);
    assert.equal(srv.grpc.directCalls, before, 'no direct call');
  } finally {
    gz.close();
  }
});

/** One raw gRPC request over node:http2: the response's headers and trailers as they came. */
async function rawAnswer(
  url: string, path: string, body: Buffer[], headers: Record<string, string> = {}, delayMs = 0,
): Promise<{ headers: Record<string, unknown>; trailers?: Record<string, unknown> }> {
  const session = http2.connect(url);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
      const out: { headers: Record<string, unknown>; trailers?: Record<string, unknown> } = { headers: {} };
      req.on('response', (h) => { out.headers = { ...h }; });
      req.on('trailers', (t) => { out.trailers = { ...t }; });
      req.on('data', () => undefined);
      req.on('end', () => resolve(out));
      req.on('error', reject);
      const send = (): void => {
        for (const part of body) req.write(part);
        req.end();
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  } finally {
    session.close();
  }
}

/** One raw gRPC request to our server: its status and message (trailers, or the headers of a trailers-only answer). */
async function raw(path: string, body: Buffer[], headers: Record<string, string> = {}, delayMs = 0): Promise<string> {
  const a = await rawAnswer(srv.url, path, body, headers, delayMs);
  const head = { ...a.headers, ...a.trailers };
  return `${String(head['grpc-status'])} ${decodeURI(String(head['grpc-message']))}`;
}

const frame = (msg: Uint8Array, flag = 0): Buffer => {
  const f = Buffer.alloc(5 + msg.length);
  f[0] = flag;
  f.writeUInt32BE(msg.length, 1);
  f.set(msg, 5);
  return f;
};

test('malformed requests get the status and text grpc-js gives them', async () => {
  const put = frame(PutRequest.encode(PutRequest.fromPartial({ key: b('raw'), value: b('v') })).finish());
  const compact = frame(CompactionRequest.encode(CompactionRequest.fromPartial({ revision: 1n })).finish());
  const cases: { name: string; body: (ok: Buffer) => Buffer[]; headers?: Record<string, string>; delayMs?: number }[] = [
    { name: 'no message', body: () => [] },
    { name: 'a truncated message', body: (ok) => [ok.subarray(0, ok.length - 1)] },
    { name: 'two messages', body: (ok) => [ok, ok] },
    { name: 'over the receive limit', body: () => [frame(Buffer.alloc(600_000, 0x61))] },
    { name: 'not protobuf', body: () => [frame(Buffer.from([0xff, 0xff, 0xff]))] },
    { name: 'a bad grpc-timeout', body: (ok) => [ok], headers: { 'grpc-timeout': 'soon' } },
    { name: 'a deadline that passes before the message', body: (ok) => [ok], headers: { 'grpc-timeout': '20m' }, delayMs: 200 },
  ];
  const before = srv.grpc.directCalls;
  for (const c of cases) {
    const direct = await raw('/etcdserverpb.KV/Put', c.body(put), c.headers, c.delayMs);
    const viaGrpcJs = await raw('/etcdserverpb.KV/Compact', c.body(compact), c.headers, c.delayMs);
    assert.equal(direct.replace('KV/Put', 'KV/X'), viaGrpcJs.replace('KV/Compact', 'KV/X'), c.name);
    assert.notEqual(direct.split(' ')[0], '0', `${c.name} is refused`);
  }
  assert.equal(srv.grpc.directCalls - before, cases.length);
  // A well-formed raw Put is answered OK with etcd's trailers (an empty grpc-message).
  assert.equal(await raw('/etcdserverpb.KV/Put', [put]), '0 ');
});

test('answers and errors carry etcd 3.4\'s headers and trailers, field for field (raw HTTP/2 against real etcd)', { skip: !hasEtcd() && 'etcd not installed' }, async () => {
  const etcd = await startRealEtcd();
  try {
    const calls: [string, string, Uint8Array][] = [
      ['Put', '/etcdserverpb.KV/Put', PutRequest.encode(PutRequest.fromPartial({ key: b('hd'), value: b('v') })).finish()],
      ['Range', '/etcdserverpb.KV/Range', RangeRequest.encode(RangeRequest.fromPartial({ key: b('hd') })).finish()],
      ['Txn', '/etcdserverpb.KV/Txn', TxnRequest.encode(TxnRequest.fromPartial({
        compare: [{ key: b('hd'), target: 3, result: 0, targetUnion: { $case: 'value', value: b('v') } }],
        success: [{ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b('hd2'), value: b('t') }) } }],
      })).finish()],
      ['DeleteRange', '/etcdserverpb.KV/DeleteRange', DeleteRangeRequest.encode(DeleteRangeRequest.fromPartial({ key: b('hd'), rangeEnd: b('he') })).finish()],
      ['a future revision', '/etcdserverpb.KV/Range', RangeRequest.encode(RangeRequest.fromPartial({ key: b('hd'), revision: 1_000_000n })).finish()],
      ['an unknown lease', '/etcdserverpb.KV/Put', PutRequest.encode(PutRequest.fromPartial({ key: b('hd'), value: b('v'), lease: 4242n })).finish()],
      ['an empty key', '/etcdserverpb.KV/Put', PutRequest.encode(PutRequest.fromPartial({ value: b('v') })).finish()],
    ];
    for (const [name, path, msg] of calls) {
      const theirs = await rawAnswer(etcd.clientUrl, path, [frame(msg)]);
      const ours = await rawAnswer(srv.url, path, [frame(msg)]);
      assert.deepEqual(ours, theirs, name);
    }
  } finally {
    await etcd.stop();
  }
});

test('status messages are percent-encoded as gRPC (grpc-go) does, and decode back', () => {
  assert.equal(grpcMessageEncode('etcdserver: mvcc: required revision is a future revision'), 'etcdserver: mvcc: required revision is a future revision');
  assert.equal(grpcMessageEncode('100% done'), '100%25 done');
  assert.equal(grpcMessageEncode('line\nbreak\ttab'), 'line%0Abreak%09tab');
  assert.equal(grpcMessageEncode('clé ✓'), 'cl%C3%A9 %E2%9C%93');
  assert.equal(grpcMessageEncode(''), '');
  for (let i = 0; i < 2000; i++) {
    const s = Array.from({ length: 1 + (i % 17) }, (_, j) => String.fromCodePoint([0x25, 0x0a, 0x7f, 0x20 + ((i * 7 + j) % 95), 0xe9, 0x2713, 0x1f600][(i + j) % 7]!)).join('');
    const e = grpcMessageEncode(s);
    assert.match(e, /^[\x20-\x7e]*$/, 'only printable ASCII on the wire');
    assert.equal(grpcMessageDecode(e), s);
  }
});
