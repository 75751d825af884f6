// The gateway's own unary gRPC client (src/upstream/unary.ts): events node:http2 delivers late
// must not throw out of its listeners (an uncaught exception ends the gateway process).
import assert from 'node:assert/strict';
import type * as http2 from 'node:http2';
import { test } from 'node:test';
import { KVService, RangeRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { UnaryChannel, type UnaryError } from '../../src/upstream/unary.js';

test('a "connect" that comes after the session was destroyed is ignored, and the call still fails cleanly', async () => {
  // Seen against etcd with TLS 1.3: the member refuses the client's certificate right after the
  // handshake, node:http2 destroys the session, then still emits 'connect'.
  const ch = new UnaryChannel('127.0.0.1:1', undefined, 1 << 20);
  const failed = new Promise<UnaryError | null>((resolve) => ch.call(KVService.range, RangeRequest.fromPartial({ key: Buffer.from('k') }), undefined, Date.now() + 2000, (err) => resolve(err)));
  const session = (ch as unknown as { conn: { session: http2.ClientHttp2Session } }).conn.session;
  session.destroy();
  assert.doesNotThrow(() => session.emit('connect', session, session.socket));
  const err = await failed;
  assert.equal(err?.code, 14, String(err));
  ch.close();
});
