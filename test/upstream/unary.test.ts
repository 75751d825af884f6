// The gateway's unary gRPC client (src/upstream/unary.ts over src/upstream/h2.ts) against a
// node:http2 server standing in for etcd: the server side is a complete HTTP/2 implementation
// (nghttp2) whose behaviour each test bends — small windows and frames, padding, a dynamic HPACK
// table, header blocks split over CONTINUATION frames, trailers-only errors, resets, GOAWAY, a
// stream limit. The real-etcd paths are covered by the upstream suites (compat, failover, TLS).
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { KVService, PutRequest, PutResponse, RangeRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { UnaryChannel, type UnaryError } from '../../src/upstream/unary.js';
import { grpcFrame } from '../../src/util/grpc-message.js';
import { frame } from '../helpers/h2.js';

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void;

/** A gRPC-shaped server: collects each request body, then hands it to `handle`. */
async function server(handle: Handler, settings: http2.Settings = {}, opts: http2.ServerOptions = {}): Promise<{ srv: http2.Http2Server; address: string; close: () => Promise<void> }> {
  const srv = http2.createServer({ settings, ...opts });
  srv.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => handle(stream, headers, Buffer.concat(chunks)));
    stream.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); });
  return {
    srv, address: `127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { for (const s of sessions) s.destroy(); srv.close(() => r()); }),
  };
}

/** Answers a Put with a header whose revision is the request value's length (so sizes show). */
function answerPut(stream: http2.ServerHttp2Stream, body: Buffer, extraTrailers: Record<string, string> = {}): void {
  const req = PutRequest.decode(body.subarray(5));
  const resp = PutResponse.encode(PutResponse.fromPartial({ header: { revision: BigInt(req.value.length), clusterId: 2n ** 63n + 5n } })).finish();
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK', ...extraTrailers }));
  stream.end(grpcFrame(resp));
}

function put(ch: UnaryChannel, value: Buffer, timeoutMs = 5000, token?: string): Promise<{ err: UnaryError | null; resp?: PutResponse }> {
  return new Promise((res) => ch.call(KVService.put, PutRequest.fromPartial({ key: Buffer.from('k'), value }), token, Date.now() + timeoutMs, (err, resp) => res({ err, resp })));
}

test('unary calls: headers as etcd gets them, many at once over one connection, big requests through small windows and frames, padded answers', async () => {
  const seen: http2.IncomingHttpHeaders[] = [];
  const s = await server((stream, headers, body) => {
    seen.push(headers);
    answerPut(stream, body);
  }, { initialWindowSize: 1000, maxFrameSize: 16384 }, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
  const ch = new UnaryChannel(s.address, undefined, 64 << 20);
  try {
    const sizes = [0, 1, 999, 1000, 1001, 70_000, 3 << 20];
    const results = await Promise.all([...sizes.map((n) => put(ch, Buffer.alloc(n, 7))), ...Array.from({ length: 50 }, () => put(ch, Buffer.from('v')))]);
    for (const [i, r] of results.entries()) {
      assert.equal(r.err, null, String(r.err));
      assert.equal(r.resp!.header!.revision, BigInt(sizes[i] ?? 1), `call ${i}`);
      assert.equal(r.resp!.header!.clusterId, 2n ** 63n + 5n);
    }
    const h = seen[0]!;
    assert.equal(h[':method'], 'POST');
    assert.equal(h[':path'], '/etcdserverpb.KV/Put');
    assert.equal(h[':authority'], s.address);
    assert.equal(h['content-type'], 'application/grpc');
    assert.equal(h.te, 'trailers');
    assert.equal(h.hasleader, 'true');
    assert.match(String(h['grpc-timeout']), /^\d+m$/);
    const tokened = await put(ch, Buffer.from('x'), 5000, 'tok.en');
    assert.equal(tokened.err, null);
    assert.equal(seen[seen.length - 1]!.token, 'tok.en');
    assert.equal(new Set(seen.map((x) => x[':authority'])).size, 1);
  } finally {
    ch.close();
    await s.close();
  }
});

test('unary calls: trailers-only errors, long header blocks (CONTINUATION, dynamic table), resets, a stream limit, HTTP errors', async () => {
  let calls = 0;
  const long = 'x'.repeat(40_000);
  const s = await server((stream, _headers, body) => {
    const v = PutRequest.decode(body.subarray(5)).value.toString();
    calls++;
    if (v === 'error') stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '9', 'grpc-message': encodeURIComponent('etcdserver: some failure %') }, { endStream: true });
    else if (v === 'reset') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else if (v === 'http') { stream.respond({ ':status': 503 }); stream.end(); }
    else if (v === 'slow') setTimeout(() => { if (!stream.destroyed) answerPut(stream, body); }, 300);
    else answerPut(stream, body, { 'x-long': long });
  }, { maxConcurrentStreams: 2 });
  const ch = new UnaryChannel(s.address, undefined, 1 << 20);
  try {
    const err = await put(ch, Buffer.from('error'));
    assert.equal(err.err?.code, 9);
    assert.equal(err.err?.details, 'etcdserver: some failure %');
    const rst = await put(ch, Buffer.from('reset'));
    assert.equal(rst.err?.code, 14);
    assert.match(rst.err!.details, /^Connection dropped.*\(stream reset with code 2\)$/);
    const http = await put(ch, Buffer.from('http'));
    assert.equal(http.err?.code, 2);
    assert.equal(http.err?.details, 'Received HTTP status code 503');
    // Answers whose trailers need CONTINUATION frames, repeated (the encoder's dynamic table
    // indexes the header after the first), 6 at once through a limit of 2 streams.
    const many = await Promise.all(Array.from({ length: 6 }, () => put(ch, Buffer.from('ok'))));
    for (const r of many) assert.equal(r.err, null, String(r.err));
    // A deadline: DEADLINE_EXCEEDED at once, the stream reset; the connection goes on.
    const late = await put(ch, Buffer.from('slow'), 100);
    assert.equal(late.err?.code, 4);
    assert.equal((await put(ch, Buffer.from('ok'))).err, null);
    assert.equal(calls, 11);
  } finally {
    ch.close();
    await s.close();
  }
});

test('unary calls: nothing listening is "No connection established" (safe to resend); GOAWAY refuses later streams and the next call reconnects', async () => {
  const refused = new UnaryChannel('127.0.0.1:1', undefined, 1 << 20);
  const r = await new Promise<UnaryError | null>((res) => refused.call(KVService.range, RangeRequest.fromPartial({ key: Buffer.from('k') }), undefined, Date.now() + 2000, (e) => res(e)));
  assert.equal(r?.code, 14);
  assert.match(r!.details, /^No connection established\. Last error: .*ECONNREFUSED/);
  refused.close();

  let goaway = true;
  const sessions = new Set<http2.Http2Session>();
  const s = await server((stream, _h, body) => {
    sessions.add(stream.session!);
    if (goaway && PutRequest.decode(body.subarray(5)).value.toString() === 'first') {
      goaway = false;
      answerPut(stream, body);
      // Only the stream answered above was processed; the next one on this connection is refused.
      stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id!);
      return;
    }
    answerPut(stream, body);
  });
  const ch = new UnaryChannel(s.address, undefined, 1 << 20);
  try {
    const [first, second] = await Promise.all([put(ch, Buffer.from('first')), new Promise<{ err: UnaryError | null }>((res) => setTimeout(() => void put(ch, Buffer.from('second')).then(res), 50))]);
    assert.equal(first.err, null);
    // The second went on the old connection after the GOAWAY (refused) or on a new one (served).
    assert.ok(second.err === null || second.err.details === 'Stream refused by server', String(second.err));
    const third = await put(ch, Buffer.from('third'));
    assert.equal(third.err, null, String(third.err));
    assert.equal(sessions.size, 2, 'a second connection after the GOAWAY');
  } finally {
    ch.close();
    await s.close();
  }
});

test('unary calls: a GOAWAY refuses the queued streams at once (safe to resend), and calls made from their callbacks go to a new connection', async () => {
  const sessions = new Set<http2.Http2Session>();
  let first: { stream: http2.ServerHttp2Stream; body: Buffer } | undefined;
  const s = await server((stream, _h, body) => {
    sessions.add(stream.session!);
    if (first === undefined) first = { stream, body }; // held: the test answers it
    else answerPut(stream, body);
  }, { maxConcurrentStreams: 1 });
  const ch = new UnaryChannel(s.address, undefined, 1 << 20);
  try {
    const settled = put(ch, Buffer.from('first'));
    while (first === undefined) await new Promise((r) => setTimeout(r, 10)); // also: the limit of 1 has arrived
    let fromCallback: Promise<{ err: UnaryError | null }> | undefined;
    const t0 = Date.now();
    const queued = new Promise<UnaryError | null>((res) => ch.call(KVService.put, PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('q') }), undefined, Date.now() + 5000, (err) => {
      fromCallback = put(ch, Buffer.from('again'));
      res(err);
    }));
    await new Promise((r) => setTimeout(r, 50));
    const { stream, body } = first;
    stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id!);
    setTimeout(() => { if (!stream.destroyed) answerPut(stream, body); }, 100);
    const err = await queued;
    assert.equal(err?.details, 'Stream refused by server');
    assert.ok(Date.now() - t0 < 2000, 'refused at once, not at its deadline');
    const { neverExecuted } = await import('../../src/upstream/errors.js');
    assert.ok(neverExecuted(err), 'a refused stream is safe to send again');
    assert.equal((await settled).err, null, 'the stream at the last ID is still answered');
    assert.equal((await fromCallback!).err, null, 'the call made from the callback went to a new connection');
    assert.equal(sessions.size, 2);
  } finally {
    ch.close();
    await s.close();
  }
});

test('unary calls: a server breaking the protocol (an endless header block) fails the call and the connection, nothing more', async () => {
  const sockets = new Set<Socket>();
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    let started = false;
    sock.on('data', () => {
      if (started) return;
      started = true;
      sock.write(frame(4, 0, 0, Buffer.alloc(0))); // SETTINGS
      sock.write(frame(1, 0, 1, Buffer.from([0x88]))); // HEADERS :status 200, no END_HEADERS
      const cont = frame(9, 0, 1, Buffer.alloc(16_384, 0x88));
      for (let i = 0; i < 80; i++) sock.write(cont); // 1.3 MiB of CONTINUATION
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const ch = new UnaryChannel(`127.0.0.1:${(srv.address() as AddressInfo).port}`, undefined, 1 << 20);
  try {
    const r = await put(ch, Buffer.from('x'));
    assert.equal(r.err?.code, 14);
    assert.match(r.err!.details, /^Connection dropped: header block too large/);
  } finally {
    ch.close();
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
