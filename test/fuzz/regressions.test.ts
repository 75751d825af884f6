// The bugs the fuzz suites found, each pinned through real HTTP: answers that were Fastify's JSON
// or a JS RangeError are Go's (etcd's) answers now.
import assert from 'node:assert/strict';
import { rawHttp } from '../helpers/raw-http.js';
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
const raw = (text: string): Promise<string> => rawHttp(server.endpoint, text, true);

test('a path that is not valid percent-encoding gets Go\'s 400 text, not Fastify\'s JSON', async () => {
  for (const path of ['/v2/keys/%zz', '/v2/keys/a%', '/v3/kv/range%', '/nothing/%C3']) {
    const a = await server.http('GET', path);
    assert.equal(a.status, 400, path);
    assert.equal(a.body, '400 Bad Request', path);
  }
  assert.deepEqual(server.takeErrors(), []);
});

test('a request Node\'s parser refuses (unknown method) gets Go\'s 400 and the connection closes', async () => {
  const out = await raw('FOO /v2/keys HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(out, /\r\nConnection: close\r\n/i);
  assert.ok(out.endsWith('\r\n\r\n400 Bad Request'), out);
  // The server still serves.
  assert.equal((await server.http('GET', '/health')).status, 200);
});

test('an unknown path with a bad JSON body answers Go\'s 404, the body is not parsed', async () => {
  for (const [path, want] of [['/nothing', '404 page not found\n'], ['/v3/nothing', 'Not Found\n']] as const) {
    const a = await server.http('POST', path, '{bad', { 'content-type': 'application/json' });
    assert.equal(a.status, 404, path);
    assert.equal(a.body, want, path);
  }
  // An unclean v2 path is redirected to its clean form before any body is read (Go's mux: 301,
  // no body, no Content-Type for a POST). The fuzz client once resolved "%2e%2e" itself and sent
  // "/v2/": the 404 of that path was pinned here instead.
  const r = await raw('POST /v2/keys/%2e%2e/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\n{bad');
  assert.match(r, /^HTTP\/1\.1 301 Moved Permanently\r\n/);
  assert.match(r, /\r\nlocation: \/v2\/\r\n/i);
  assert.doesNotMatch(r, /\r\ncontent-type:/i);
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

// --- v2 watches (found by the v2 watch fuzzing and its differential against etcd 3.4, v2watch.ts) ---

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function v2Write(method: string, path: string, body?: string): Promise<number> {
  const r = await fetch(`${server.url}/v2/keys${path}`, { method, ...(body === undefined ? {} : { body, headers: FORM }) });
  await r.text();
  assert.ok(r.status < 300, `${method} ${path}: ${r.status}`);
  return Number(r.headers.get('x-etcd-index'));
}

/** A registered watch (its headers arrived); `body(ms)` reads what came within ms, then hangs up. */
async function v2Watch(pathAndQuery: string): Promise<{ status: number; body(ms: number): Promise<string> }> {
  const ac = new AbortController();
  const r = await fetch(`${server.url}/v2/keys${pathAndQuery}`, { signal: ac.signal });
  return {
    status: r.status,
    async body(ms) {
      let text = '';
      const reader = r.body!.getReader();
      const timer = setTimeout(() => ac.abort(), ms);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          text += Buffer.from(value).toString();
        }
      } catch { /* cut by the timer */ } finally {
        clearTimeout(timer);
      }
      return text;
    },
  };
}

test('a live directory delete fires the watches of nodes that existed inside it, not of paths that did not (etcd 3.4)', async () => {
  await v2Write('PUT', '/rg1/d/k', 'value=a');
  const existing = await v2Watch('/rg1/d/k?wait=true');
  const never = await v2Watch('/rg1/d/never?wait=true');
  const neverRecursive = await v2Watch('/rg1/d/never?wait=true&recursive=true');
  const idx = await v2Write('DELETE', '/rg1?recursive=true');
  const ev = JSON.parse(await existing.body(2_000)) as { action: string; node: { key: string; modifiedIndex: number } };
  assert.deepEqual([ev.action, ev.node.key, ev.node.modifiedIndex], ['delete', '/rg1', idx]);
  assert.equal(await never.body(300), '');
  assert.equal(await neverRecursive.body(300), '');
  // From history, a directory delete still matches by plain prefix, as etcd's history scan does.
  const past = await v2Watch(`/rg1/d/never?wait=true&waitIndex=${idx}`);
  assert.equal((JSON.parse(await past.body(2_000)) as { node: { key: string } }).node.key, '/rg1');
});

test('a waitIndex whose history compaction removed is refused (errorCode 401), not answered with an empty 200', async () => {
  await v2Write('PUT', '/rg2', 'value=1');
  const r = await v2Write('PUT', '/rg2', 'value=2');
  const c = await server.http('POST', '/v3/kv/compaction', JSON.stringify({ revision: String(r) }));
  assert.equal(c.status, 200, c.body);
  const next = await v2Write('PUT', '/rg2', 'value=3');
  for (const w of [r - 1, r]) {
    const a = await server.http('GET', `/v2/keys/rg2?wait=true&waitIndex=${w}`);
    assert.equal(a.status, 400, `waitIndex ${w}: ${a.body}`);
    const e = JSON.parse(a.body) as { errorCode: number; cause: string };
    assert.equal(e.errorCode, 401);
    assert.equal(e.cause, `the requested history has been cleared [${r}/${w}]`);
  }
  // The first index whose event (and prevNode) is still readable is served.
  const ok = await server.http('GET', `/v2/keys/rg2?wait=true&waitIndex=${r + 1}`);
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as { node: { modifiedIndex: number } }).node.modifiedIndex, next);
  assert.deepEqual(server.takeErrors(), []);
});

test('a stream satisfied from history by the delete of its own path gets that event once; live, twice (etcd 3.4)', async () => {
  await v2Write('PUT', '/rg3', 'value=a');
  const del = await v2Write('DELETE', '/rg3');
  const past = await v2Watch(`/rg3?wait=true&stream=true&waitIndex=${del}`);
  assert.equal((await past.body(300)).trim().split('\n').length, 1);
  await v2Write('PUT', '/rg3', 'value=b');
  const live = await v2Watch('/rg3?wait=true&stream=true');
  await v2Write('DELETE', '/rg3');
  assert.equal((await live.body(300)).trim().split('\n').length, 2);
});
