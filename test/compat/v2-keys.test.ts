// Differential test of the v2 keys API: the same request sequences against real etcd 3.4 (native v2
// store, --enable-v2) and our in-process server; status, etcd headers' presence and JSON bodies are
// compared after mapping every index to its order of appearance within the sequence.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hasEtcd, startRealEtcd, type Server } from '../helpers/procs.js';
import { startV2Server, type V2TestServer } from '../v2/harness.js';

interface Req { readonly method: string; readonly path: string; readonly body?: string }
interface Answer { readonly status: number; readonly headers: string; readonly body: unknown }

const HEADERS = ['x-etcd-index', 'x-etcd-cluster-id', 'x-raft-index', 'x-raft-term', 'content-type', 'location', 'allow'] as const;

async function send(base: string, r: Req): Promise<{ status: number; headers: Headers; text: string }> {
  const init: RequestInit = { method: r.method, redirect: 'manual' };
  if (r.body !== undefined) {
    init.body = r.body;
    init.headers = { 'content-type': 'application/x-www-form-urlencoded' };
  }
  const resp = await fetch(base + r.path, init);
  return { status: resp.status, headers: resp.headers, text: await resp.text() };
}

/** Maps each distinct index to its order of appearance (shared by one sequence's answers). */
class IndexMap {
  private readonly seen = new Map<string, number>();
  map(n: string | number): string {
    const k = String(n);
    if (k === '0') return '0';
    let v = this.seen.get(k);
    if (v === undefined) { v = this.seen.size + 1; this.seen.set(k, v); }
    return `#${v}`;
  }
}

function normalizeJson(v: unknown, ix: IndexMap): unknown {
  if (Array.isArray(v)) {
    const items = v.map((x) => normalizeJson(x, ix));
    return items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  const entries = Object.entries(v as Record<string, unknown>);
  // key order is part of the contract (Go struct order): keep it
  for (const [k, x] of entries) {
    if (k === 'modifiedIndex' || k === 'createdIndex' || k === 'index') out[k] = ix.map(x as number);
    else if (k === 'key' && typeof x === 'string') out[k] = x.replace(/\/(\d{20})(?=\/|$)/g, (_m, d: string) => `/<${ix.map(BigInt(d).toString())}>`);
    else if (k === 'cause' && typeof x === 'string') out[k] = x.replace(/ != (\d+)\]/g, (_m, d: string) => ` != ${ix.map(d)}]`);
    else out[k] = normalizeJson(x, ix);
  }
  return out;
}

function answerOf(r: { status: number; headers: Headers; text: string }, ix: IndexMap): Answer {
  const idx = r.headers.get('x-etcd-index');
  const mapped = idx === null ? null : ix.map(idx);
  let body: unknown = r.text;
  if ((r.headers.get('content-type') ?? '').startsWith('application/json') && r.text !== '') body = normalizeJson(JSON.parse(r.text), ix);
  else if (r.status === 301 || r.status === 405) body = r.text.length > 0 ? 'text' : '';
  const present = HEADERS.filter((h) => r.headers.get(h) !== null).map((h) => (h === 'content-type' || h === 'location' || h === 'allow') ? `${h}=${r.headers.get(h)}` : h);
  return { status: r.status, headers: `${present.join(',')} index=${mapped}`, body };
}

async function run(base: string, seq: readonly Req[]): Promise<Answer[]> {
  const ix = new IndexMap();
  const out: Answer[] = [];
  for (const r of seq) out.push(answerOf(await send(base, r), ix));
  return out;
}

// ---- sequences -------------------------------------------------------------------------------

type Seq = { readonly name: string; readonly reqs: (d: string) => Req[] };

const put = (path: string, body?: string): Req => (body === undefined ? { method: 'PUT', path } : { method: 'PUT', path, body });
const get = (path: string): Req => ({ method: 'GET', path });
const del = (path: string): Req => ({ method: 'DELETE', path });
const K = '/v2/keys';

const setups: Record<string, (d: string) => Req[]> = {
  empty: () => [],
  file: (d) => [put(`${K}${d}/k`, 'value=v1')],
  fileTwice: (d) => [put(`${K}${d}/k`, 'value=v0'), put(`${K}${d}/k`, 'value=v1')],
  emptyDir: (d) => [put(`${K}${d}/k?dir=true`)],
  fullDir: (d) => [put(`${K}${d}/k/c`, 'value=x'), put(`${K}${d}/k/_h`, 'value=h'), put(`${K}${d}/k/sub/y`, 'value=y')],
  parentFile: (d) => [put(`${K}${d}`, 'value=p')],
};

const ops: Record<string, (d: string) => Req[]> = {
  get: (d) => [get(`${K}${d}/k`)],
  getRecursive: (d) => [get(`${K}${d}/k?recursive=true&sorted=true`)],
  getChild: (d) => [get(`${K}${d}/k/x/y`)],
  head: (d) => [{ method: 'HEAD', path: `${K}${d}/k` }],
  set: (d) => [put(`${K}${d}/k`, 'value=n')],
  setNoValue: (d) => [put(`${K}${d}/k?noValueOnSuccess=true`, 'value=n')],
  setDir: (d) => [put(`${K}${d}/k?dir=true`)],
  create: (d) => [put(`${K}${d}/k?prevExist=false`, 'value=n')],
  createDir: (d) => [put(`${K}${d}/k?prevExist=false&dir=true`)],
  update: (d) => [put(`${K}${d}/k?prevExist=true`, 'value=n')],
  updateEmpty: (d) => [put(`${K}${d}/k?prevExist=true`)],
  updateDir: (d) => [put(`${K}${d}/k?prevExist=true&dir=true`)],
  casValue: (d) => [put(`${K}${d}/k?prevValue=v1`, 'value=n')],
  casValueWrong: (d) => [put(`${K}${d}/k?prevValue=zz`, 'value=n')],
  casIndexWrong: (d) => [put(`${K}${d}/k?prevIndex=1`, 'value=n')],
  casBothWrong: (d) => [put(`${K}${d}/k?prevIndex=1&prevValue=zz`, 'value=n')],
  casExist: (d) => [put(`${K}${d}/k?prevExist=true&prevValue=v1`, 'value=n')],
  createIgnoresPrev: (d) => [put(`${K}${d}/k?prevExist=false&prevValue=v1`, 'value=n')],
  child: (d) => [put(`${K}${d}/k/x`, 'value=n')],
  post: (d) => [{ method: 'POST', path: `${K}${d}/k`, body: 'value=q' }],
  postDir: (d) => [{ method: 'POST', path: `${K}${d}/k?dir=true` }],
  delete: (d) => [del(`${K}${d}/k`)],
  deleteDir: (d) => [del(`${K}${d}/k?dir=true`)],
  deleteRecursive: (d) => [del(`${K}${d}/k?recursive=true`)],
  cadValue: (d) => [del(`${K}${d}/k?prevValue=v1`)],
  cadValueWrong: (d) => [del(`${K}${d}/k?prevValue=zz`)],
  cadIndexWrong: (d) => [del(`${K}${d}/k?prevIndex=1`)],
  deleteNoValue: (d) => [del(`${K}${d}/k?noValueOnSuccess=true`)],
};

const grid: Seq[] = Object.entries(setups).flatMap(([sn, s]) => Object.entries(ops).map(([on, o]) => ({
  name: `${sn} + ${on}`,
  reqs: (d: string) => [...s(d), ...o(d), get(`${K}${d}?recursive=true&sorted=true`)],
})));

const single = (name: string, reqs: (d: string) => Req[]): Seq => ({ name, reqs });
const validation: Seq[] = [
  ['?recursive', 'recursive'], ['?recursive=', 'recursive='], ['?sorted=yes', 'sorted=yes'], ['?dir=2', 'dir=2'],
  ['?quorum=x', 'quorum'], ['?stream=x', 'stream'], ['?wait=x', 'wait'], ['?prevIndex=-1', 'prevIndex'], ['?prevIndex=', 'prevIndex empty'],
  ['?waitIndex=abc', 'waitIndex'], ['?prevValue=', 'prevValue empty'], ['?noValueOnSuccess=x', 'noValueOnSuccess'],
  ['?ttl=abc', 'ttl'], ['?prevExist=x', 'prevExist'], ['?refresh=x', 'refresh'], ['?refresh=true', 'refresh no ttl'],
  ['?refresh=true&ttl=5&value=a', 'refresh with value'], ['?v=%zz', 'bad escape'], ['?a=1;b=2', 'semicolon'],
  ['?prevIndex=x&recursive=x', 'order'], ['?prevIndex=18446744073709551616', 'uint overflow'], ['?recursive=T&sorted=False', 'go bools'],
].flatMap(([q, n]) => [
  single(`validation PUT ${n}`, (d) => [put(`${K}${d}/v${q!}`, 'value=1')]),
  single(`validation DELETE ${n}`, (d) => [del(`${K}${d}/v${q!}`)]),
]);

const misc: Seq[] = [
  single('wait on PUT', (d) => [put(`${K}${d}/w?wait=true`, 'value=1')]),
  single('wait on HEAD', (d) => [{ method: 'HEAD', path: `${K}${d}/w?wait=true` }]),
  single('root writes', () => [put(`${K}/`, 'value=1'), put(`${K}?prevExist=false`), del(`${K}/`), del(`${K}/?recursive=true`), del(`${K}/?prevValue=x`), put(`${K}/?prevValue=x`, 'value=1')]),
  single('unclean paths', (d) => [get(`${K}${d}//a?x=1`), put(`${K}${d}/./a`, 'value=1'), get(`${K}${d}/a/../b`)]),
  single('trailing slash', (d) => [put(`${K}${d}/t/`, 'value=1'), get(`${K}${d}/t/`)]),
  single('escaped path', (d) => [put(`${K}${d}/a%2Fb`, 'value=1'), put(`${K}${d}/sp%20ace`, 'value=2'), get(`${K}${d}?recursive=true&sorted=true`)]),
  single('body beats query', (d) => [put(`${K}${d}/q?value=fromquery`, 'value=frombody'), get(`${K}${d}/q`)]),
  single('first value wins', (d) => [put(`${K}${d}/q?value=q1&value=q2`), get(`${K}${d}/q`)]),
  single('json body ignored', (d) => [{ method: 'PUT', path: `${K}${d}/j`, body: undefined }, get(`${K}${d}/j`)]),
  single('delete body ignored', (d) => [put(`${K}${d}/x`, 'value=1'), { method: 'DELETE', path: `${K}${d}/x`, body: 'prevValue=nope' }]),
  single('escaping', (d) => [put(`${K}${d}/e`, 'value=h%C3%A9llo+%22q%22+%3Ctag%3E+%26amp%3B')]),
  single('empty value', (d) => [put(`${K}${d}/e`), get(`${K}${d}/e`)]),
  single('patch', (d) => [{ method: 'PATCH', path: `${K}${d}/p` }]),
  single('in-order queue', (d) => [{ method: 'POST', path: `${K}${d}/q`, body: 'value=a' }, { method: 'POST', path: `${K}${d}/q`, body: 'value=b' }, get(`${K}${d}/q?sorted=true`)]),
  single('post into file', (d) => [put(`${K}${d}/f`, 'value=1'), { method: 'POST', path: `${K}${d}/f`, body: 'value=a' }]),
  single('deep implicit dirs', (d) => [put(`${K}${d}/a/b/c/d`, 'value=1'), get(`${K}${d}/a?recursive=true`), get(`${K}${d}/a/b`)]),
  single('hidden listing', (d) => [put(`${K}${d}/_h/x`, 'value=1'), put(`${K}${d}/v`, 'value=2'), get(`${K}${d}?recursive=true`), get(`${K}${d}/_h/x`)]),
  single('set replaces file by dir', (d) => [put(`${K}${d}/f`, 'value=1'), put(`${K}${d}/f?dir=true`), get(`${K}${d}/f`)]),
  single('cas twice', (d) => [put(`${K}${d}/c`, 'value=1'), put(`${K}${d}/c?prevValue=1`, 'value=2'), put(`${K}${d}/c?prevValue=2`, 'value=3'), get(`${K}${d}/c`)]),
  single('update keeps created', (d) => [put(`${K}${d}/u`, 'value=1'), put(`${K}${d}/u?prevExist=true`, 'value=2'), put(`${K}${d}/u`, 'value=3'), put(`${K}${d}/u?prevExist=true`, 'value=4')]),
  single('keysfoo 404', () => [get('/v2/keysfoo')]),
];

const sequences: Seq[] = [...grid, ...validation, ...misc];

describe('v2 keys API vs etcd 3.4', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd (etcd 3.4)' }, () => {
  let etcd: Server | undefined;
  let ours: V2TestServer | undefined;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd(), startV2Server()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.close()]);
  });

  test('empty root', async () => {
    assert.deepEqual(await run(ours!.url, [get(`${K}/`), get(K)]), await run(etcd!.clientUrl, [get(`${K}/`), get(K)]));
  });

  sequences.forEach((seq, i) => {
    test(seq.name, async () => {
      const reqs = seq.reqs(`/s${i}`);
      const [want, got] = await Promise.all([run(etcd!.clientUrl, reqs), run(ours!.url, reqs)]);
      assert.deepEqual(got, want);
    });
  });
});
