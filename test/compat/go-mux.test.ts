// Routing on the client port as etcd 3.4's Go ServeMux does it (src/http/go-mux.ts): an escaped
// slash in the path separates segments, and an unclean path is redirected (301) before any
// route is looked at. And a client's half-close as Go's server takes it (src/http/half-close.ts). The same raw requests (paths sent as they are) go to etcd 3.4 with
// --enable-v2 and to ours; status, Location, Content-Type and the body's shape must agree.
import assert from 'node:assert/strict';
import { rawHttp } from '../helpers/raw-http.js';
import { after, before, describe, test } from 'node:test';
import { hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

interface Answer {
  status: number;
  location: string | undefined;
  contentType: string | undefined;
  body: string;
}

/** One HTTP/1.1 request with the path exactly as given (no client-side cleaning). */
async function rawRequest(endpoint: string, method: string, path: string, body = '', halfClose = false): Promise<Answer> {
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${endpoint}`, 'Connection: close'];
  if (body !== '') head.push('Content-Type: application/x-www-form-urlencoded', `Content-Length: ${Buffer.byteLength(body)}`);
  const out = await rawHttp(endpoint, `${head.join('\r\n')}\r\n\r\n${body}`, halfClose);
  const [headText = '', ...rest] = out.split('\r\n\r\n');
  const lines = headText.split('\r\n');
  const header = (name: string): string | undefined =>
    lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  let text = rest.join('\r\n\r\n');
  if (header('transfer-encoding') === 'chunked') text = text.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n$/, '').replace(/\r\n$/, '');
  return { status: Number(lines[0]!.split(' ')[1]), location: header('location'), contentType: header('content-type'), body: text };
}

/** The body with what must differ between two servers (indexes, IDs, revisions) taken out. */
function shape(body: string): string {
  return body
    .replace(/"(modifiedIndex|createdIndex|index)":\d+/g, '"$1":N')
    .replace(/"(cluster_id|member_id|revision|raft_term)":"\d+"/g, '"$1":"N"');
}

const STEPS: { method: string; path: string; body?: string }[] = [
  { method: 'PUT', path: '/v2/keys%2Fa', body: 'value=1' },
  { method: 'GET', path: '/v2%2Fkeys/a' },
  { method: 'GET', path: '/v2/keys%2f' },
  { method: 'PUT', path: '/v2/keys/b%2Fc', body: 'value=2' },
  { method: 'GET', path: '/v2/keys/b?recursive=true' },
  { method: 'GET', path: '/v2/../v2/keys/a' },
  { method: 'PUT', path: '//v2/keys/q', body: 'value=3' },
  { method: 'GET', path: '//version' },
  { method: 'GET', path: '/v2/./machines' },
  { method: 'GET', path: '/version%2F' },
  { method: 'GET', path: '/v2/machines%2F' },
  { method: 'POST', path: '/v3/kv%2Frange', body: '{"key":"YQ=="}' },
  { method: 'POST', path: '/v3/kv/../kv/range', body: '{"key":"YQ=="}' },
  { method: 'GET', path: '/v2/keys/x%2F..%2Fa' },
];

describe('Go mux routing vs etcd 3.4', { skip: !hasEtcd() && 'needs /usr/bin/etcd' }, () => {
  let etcd: Server;
  let ours: Server;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd({ enableV2: true }), startOurServer()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test('a client that half-closes after its request gets its answer; a long poll ends with an empty body', async () => {
    const steps: { method: string; path: string; body?: string }[] = [
      { method: 'PUT', path: '/v2/keys/hc', body: 'value=1' },
      { method: 'GET', path: '/v2/keys/hc' },
      { method: 'GET', path: '/v2/keys/hc?wait=true' },
      { method: 'GET', path: '/v2/keys/nowhere?wait=true&recursive=true' },
      { method: 'DELETE', path: '/v2/keys/hc' },
    ];
    for (const s of steps) {
      const [want, got] = [await rawRequest(etcd.endpoint, s.method, s.path, s.body, true), await rawRequest(ours.endpoint, s.method, s.path, s.body, true)];
      assert.deepEqual(
        { status: got.status, contentType: got.contentType, body: shape(got.body) },
        { status: want.status, contentType: want.contentType, body: shape(want.body) },
        `${s.method} ${s.path}, half-closed`,
      );
    }
  });

  test('escaped slashes and unclean paths are routed and redirected as etcd does', async () => {
    for (const s of STEPS) {
      const [want, got] = [await rawRequest(etcd.endpoint, s.method, s.path, s.body), await rawRequest(ours.endpoint, s.method, s.path, s.body)];
      const what = `${s.method} ${s.path}`;
      assert.deepEqual(
        { status: got.status, location: got.location, contentType: got.contentType, body: shape(got.body) },
        { status: want.status, location: want.location, contentType: want.contentType, body: shape(want.body) },
        what,
      );
    }
  });
});

