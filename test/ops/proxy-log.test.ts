// --trusted-proxies and log hygiene: request logs name the X-Forwarded-For client only when the
// direct peer is a trusted proxy, and secrets never reach the log (the log stream is captured
// in-process; the "proxy" is a second loopback address, 127.0.0.2).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { Logger } from 'pino';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

const lines: Record<string, unknown>[] = [];
const capture = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});

let srv: RunningServer;
let log: Logger;
let dir: string;
let port: number;

/** One request from a chosen loopback source address (the "peer" the server sees). */
function get(path: string, from: string, headers: Record<string, string>, method = 'GET', body = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, localAddress: from, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  dir = await makeTempDir('proxylog-');
  const r = loadConfig(['--data-dir', dir, '--listen-client-urls', 'http://127.0.0.1:0', '--log-level', 'debug', '--trusted-proxies', '127.0.0.2, 10.0.0.0/8'], {});
  if (r.kind !== 'run') throw new Error('bad test config');
  log = createLogger('debug', capture);
  srv = await startServer(r.config, log);
  port = srv.listeners[0]!.port;
});
after(async () => {
  await srv.close();
  await removeTempDir(dir);
});

/** The remoteAddress of the "incoming request" log line of the request with this URL. */
async function loggedAddress(path: string, from: string, headers: Record<string, string>): Promise<unknown> {
  assert.equal(await get(path, from, headers), 200);
  const line = lines.find((l) => l.msg === 'incoming request' && (l.req as { url?: string } | undefined)?.url === path);
  assert.ok(line !== undefined, `a request log line for ${path}`);
  // The request's (lazily made) child logger carries the request ID and the http component.
  assert.equal(line.component, 'http');
  assert.ok(typeof line.reqId === 'string' && line.reqId !== '', 'a request ID');
  assert.ok(lines.some((l) => l.msg === 'request completed' && l.reqId === line.reqId), 'the completion line has the same request ID');
  return (line.req as { remoteAddress?: unknown }).remoteAddress;
}

test('an untrusted peer\'s X-Forwarded-For is not believed: the socket address is logged', async () => {
  assert.equal(await loggedAddress('/version?direct', '127.0.0.1', { 'x-forwarded-for': '203.0.113.7' }), '127.0.0.1');
});

test('a trusted proxy\'s X-Forwarded-For names the client', async () => {
  assert.equal(await loggedAddress('/version?proxied', '127.0.0.2', { 'x-forwarded-for': '203.0.113.7' }), '203.0.113.7');
  // Behind two proxies only the nearest untrusted hop counts: a client cannot forge its address
  // by sending its own X-Forwarded-For through the trusted proxy.
  assert.equal(await loggedAddress('/version?chain', '127.0.0.2', { 'x-forwarded-for': '198.51.100.1, 203.0.113.8' }), '203.0.113.8');
});

test('secrets are never logged: auth headers and password fields are redacted', async () => {
  const token = 'secret-token-4f1c';
  // (etcd answers a token with auth off as an invalid token: 401)
  await get('/v3/kv/range', '127.0.0.1', { authorization: token, 'grpc-metadata-token': token }, 'POST', JSON.stringify({ key: 'Zm9v' }));
  log.info({ req: { headers: { authorization: token, 'grpc-metadata-token': token, cookie: token } }, user: { name: 'u', password: token }, password: token }, 'a logged request object');
  const text = lines.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(!text.includes(token), 'the token appears nowhere in the log');
  const logged = lines.find((l) => l.msg === 'a logged request object') as { req: { headers: Record<string, string> }; user: { password: string }; password: string };
  assert.deepEqual(logged.req.headers, { authorization: '[Redacted]', 'grpc-metadata-token': '[Redacted]', cookie: '[Redacted]' });
  assert.equal(logged.user.password, '[Redacted]');
  assert.equal(logged.password, '[Redacted]');
});
