// The gateway's grpc-js channel to an etcd member (watch and lease streams) pings only while a call
// is open: etcd's server enforces PermitWithoutStream=false and sends GOAWAY too_many_pings to a
// client that pings an idle connection. A node:http2 server stands in for the member and counts the
// PING frames it receives (grpc-js pings every 10 s).
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { RangeRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { credentialsOf, Endpoint } from '../../src/upstream/pool.js';

const EMPTY_MESSAGE = Buffer.alloc(5); // a gRPC frame of a zero-length message (an empty RangeResponse)

test('an idle upstream channel sends no keepalive pings; one with an open stream does', { timeout: 60_000 }, async () => {
  const srv = http2.createServer();
  let pings = 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => {
    sessions.add(s);
    s.on('ping', () => pings++);
    s.on('close', () => sessions.delete(s));
  });
  let hold: http2.ServerHttp2Stream | undefined;
  srv.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':path'] === '/etcdserverpb.Watch/Watch') {
      // A watch stream stays open (its answer never comes).
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      hold = stream;
      return;
    }
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(EMPTY_MESSAGE);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const ep = new Endpoint(`127.0.0.1:${(srv.address() as AddressInfo).port}`, undefined, credentialsOf(undefined), 1 << 20);
  try {
    // One call through the grpc-js channel connects it; then it sits idle past a keepalive period.
    await new Promise<void>((res, rej) => ep.kv.range(RangeRequest.fromPartial({ key: Buffer.from('a') }), (err) => (err ? rej(err) : res())));
    await new Promise((r) => setTimeout(r, 12_000));
    assert.equal(pings, 0, 'no pings on an idle connection');

    // With a stream open, the channel pings (it notices a member gone without a FIN).
    const call = ep.watch.watch();
    call.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 12_000));
    assert.ok(pings >= 1, `pings while a stream is open (${pings})`);
    call.cancel();
    hold?.close();
  } finally {
    ep.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
