// The bugs the fuzz suites found, each pinned through real HTTP: answers that were Fastify's JSON
// or a JS RangeError are Go's (etcd's) answers now.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { runSuite, startFuzzServer, type FuzzServer } from './lib.js';

let server: FuzzServer;
before(async () => {
  server = await startFuzzServer();
});
after(async () => {
  await server.close();
});

/** Sends raw bytes and returns everything the server wrote before closing. */
function rawHttp(text: string): Promise<string> {
  const [host, port] = server.endpoint.split(':');
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), host!, () => sock.end(text));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (out += c));
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
  });
}

test('a path that is not valid percent-encoding gets Go\'s 400 text, not Fastify\'s JSON', async () => {
  for (const path of ['/v2/keys/%zz', '/v2/keys/a%', '/v3/kv/range%', '/nothing/%C3']) {
    const a = await server.http('GET', path);
    assert.equal(a.status, 400, path);
    assert.equal(a.body, '400 Bad Request', path);
  }
  assert.deepEqual(server.takeErrors(), []);
});

test('a request Node\'s parser refuses (unknown method) gets Go\'s 400 and the connection closes', async () => {
  const out = await rawHttp('FOO /v2/keys HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(out, /\r\nConnection: close\r\n/i);
  assert.ok(out.endsWith('\r\n\r\n400 Bad Request'), out);
  // The server still serves.
  assert.equal((await server.http('GET', '/health')).status, 200);
});

test('an unknown path with a bad JSON body answers Go\'s 404, the body is not parsed', async () => {
  for (const [path, want] of [['/nothing', '404 page not found\n'], ['/v2/keys/%2e%2e/', '404 page not found\n'], ['/v3/nothing', 'Not Found\n']] as const) {
    const a = await server.http('POST', path, '{bad', { 'content-type': 'application/json' });
    assert.equal(a.status, 404, path);
    assert.equal(a.body, want, path);
  }
  // /health and /version still answer with a JSON content-type on the request.
  assert.equal((await server.http('GET', '/health', undefined, { 'content-type': 'application/json' })).status, 200);
});

test('deeply nested JSON is refused with Go\'s "exceeded max depth", not a stack overflow', async () => {
  const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
  const a = await server.http('POST', '/v3/kv/range', deep);
  assert.equal(a.status, 400, a.body);
  assert.deepEqual(JSON.parse(a.body), { error: 'exceeded max depth', message: 'exceeded max depth', code: 3 });
  const arrays = await server.http('POST', '/v3/kv/put', '{"key":' + '['.repeat(3000));
  assert.equal(arrays.status, 400, arrays.body);
  // Nesting well inside the limit still decodes (the unknown field is ignored, as etcd does).
  const ok = await server.http('POST', '/v3/kv/range', '{"key":"YQ==","x":' + '{"a":'.repeat(100) + '1' + '}'.repeat(100) + '}');
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(server.takeErrors(), []);
});

test('the checks can fail: a write reported as rejected and a 500 are each caught', async () => {
  let n = 0;
  const r = await runSuite('self-check', server, fc.constantFrom('write', 'fine', '500'), async (kind) => {
    if (kind === 'write') {
      await server.http('POST', '/v3/kv/put', JSON.stringify({ key: Buffer.from(`self-check/${n++}`).toString('base64'), value: 'eA==' }));
      return { problems: [], rejected: true, mayWrite: false, bucket: 'write' };
    }
    return { problems: kind === '500' ? ['HTTP 500'] : [], rejected: true, mayWrite: false, bucket: kind };
  }, { numRuns: 30, seed: 1, mode: 'count' });
  assert.ok(r.failures.some((f) => f.includes('store changed by a rejected request')), r.failures.join('\n'));
  assert.ok(r.failures.some((f) => f.includes('HTTP 500')));
  assert.ok(r.failures.every((f) => f.includes('store changed') || f.includes('HTTP 500')), r.failures.join('\n'));
});
