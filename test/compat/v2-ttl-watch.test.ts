// Differential tests of v2 TTLs and watches against real etcd 3.4 (--enable-v2): the same request
// sequences on both servers; indexes mapped to their order of appearance, `expiration` checked to
// be RFC3339Nano within 2 s of the request and `ttl` compared within +-1 s.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hasEtcd, startRealEtcd, type Server } from '../helpers/procs.js';
import { startV2Server, type V2TestServer } from '../v2/harness.js';

const K = '/v2/keys';
const RFC3339NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

interface Req { readonly method: string; readonly path: string; readonly body?: string }
const put = (path: string, body?: string): Req => (body === undefined ? { method: 'PUT', path } : { method: 'PUT', path, body });
const get = (path: string): Req => ({ method: 'GET', path });
const del = (path: string): Req => ({ method: 'DELETE', path });

class IndexMap {
  private readonly seen = new Map<string, number>();
  map(n: unknown): string {
    const k = String(n);
    if (k === '0') return '0';
    let v = this.seen.get(k);
    if (v === undefined) { v = this.seen.size + 1; this.seen.set(k, v); }
    return `#${v}`;
  }
}

function norm(v: unknown, ix: IndexMap, sentAt: number): unknown {
  if (Array.isArray(v)) return v.map((x) => norm(x, ix, sentAt));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'modifiedIndex' || k === 'createdIndex' || k === 'index') out[k] = ix.map(x);
    else if (k === 'expiration' && typeof x === 'string') {
      assert.match(x, RFC3339NANO);
      out[k] = Math.abs(Date.parse(x) - sentAt) < 300_000_000 ? 'EXP' : x; // a time, not compared exactly
    } else if (k === 'ttl' && typeof x === 'number') out[k] = `ttl~${Math.round(x / 2)}`; // within +-1 s (coarse buckets)
    else if (k === 'key' && typeof x === 'string') out[k] = x.replace(/\/(\d{20})(?=\/|$)/g, (_m, d: string) => `/<${ix.map(BigInt(d).toString())}>`);
    else if (k === 'cause' && typeof x === 'string') out[k] = x.replace(/\d+/g, (d) => ix.map(d));
    else out[k] = norm(x, ix, sentAt);
  }
  return out;
}

interface Answer { readonly status: number; readonly body: unknown }

async function send(base: string, r: Req, ix: IndexMap): Promise<Answer> {
  const init: RequestInit = { method: r.method };
  if (r.body !== undefined) { init.body = r.body; init.headers = { 'content-type': 'application/x-www-form-urlencoded' }; }
  const sentAt = Date.now();
  const resp = await fetch(base + r.path, init);
  const text = await resp.text();
  const lines = text.split('\n').filter((l) => l !== '');
  return { status: resp.status, body: lines.map((l) => norm(JSON.parse(l), ix, sentAt)) };
}

async function run(base: string, reqs: readonly Req[]): Promise<Answer[]> {
  const ix = new IndexMap();
  const out: Answer[] = [];
  for (const r of reqs) out.push(await send(base, r, ix));
  return out;
}

/** Opens a watch, runs the writes once it is registered, and returns the watch's answer. */
async function watchWhile(base: string, watch: string, writes: readonly Req[], opts: { stream?: number } = {}): Promise<{ answers: Answer[]; events: unknown[] }> {
  const ix = new IndexMap();
  const ac = new AbortController();
  const sentAt = Date.now();
  const resp = await fetch(base + watch, { signal: ac.signal });
  const answers: Answer[] = [];
  for (const w of writes) answers.push(await send(base, w, ix));
  const events: unknown[] = [];
  const reader = resp.body!.getReader();
  let buf = '';
  const want = opts.stream ?? 1;
  const deadline = setTimeout(() => ac.abort(), 8000);
  try {
    while (events.length < want) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) { events.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
    }
  } catch { /* aborted */ } finally {
    clearTimeout(deadline);
    ac.abort();
  }
  return { answers, events: events.map((e) => norm(e, ix, sentAt)) };
}

type Seq = { readonly name: string; readonly reqs: (d: string) => Req[] };
const seqs: Seq[] = [
  { name: 'ttl set/get', reqs: (d) => [put(`${K}${d}/t?ttl=100`, 'value=a'), get(`${K}${d}/t`)] },
  { name: 'ttl 0', reqs: (d) => [put(`${K}${d}/t?ttl=0`, 'value=a')] },
  { name: 'ttl empty = permanent', reqs: (d) => [put(`${K}${d}/t?ttl=`, 'value=a'), get(`${K}${d}/t`)] },
  { name: 'overwrite removes ttl', reqs: (d) => [put(`${K}${d}/t?ttl=100`, 'value=a'), put(`${K}${d}/t`, 'value=b'), get(`${K}${d}/t`)] },
  { name: 'update clears ttl', reqs: (d) => [put(`${K}${d}/t?ttl=100`, 'value=a'), put(`${K}${d}/t?prevExist=true`, 'value=b&ttl='), get(`${K}${d}/t`)] },
  { name: 'update sets ttl', reqs: (d) => [put(`${K}${d}/t`, 'value=a'), put(`${K}${d}/t?prevExist=true&ttl=50`, 'value=b'), get(`${K}${d}/t`)] },
  { name: 'cas with ttl', reqs: (d) => [put(`${K}${d}/t`, 'value=a'), put(`${K}${d}/t?prevValue=a&ttl=50`, 'value=b'), get(`${K}${d}/t`)] },
  { name: 'create with ttl', reqs: (d) => [put(`${K}${d}/t?prevExist=false&ttl=50`, 'value=b'), get(`${K}${d}/t`)] },
  { name: 'post with ttl', reqs: (d) => [{ method: 'POST', path: `${K}${d}/q?ttl=50`, body: 'value=x' }, get(`${K}${d}/q?recursive=true`)] },
  { name: 'dir ttl', reqs: (d) => [put(`${K}${d}/dd?dir=true&ttl=100`), put(`${K}${d}/dd/c`, 'value=1'), get(`${K}${d}/dd?recursive=true`)] },
  { name: 'dir ttl update', reqs: (d) => [put(`${K}${d}/dd?dir=true`), put(`${K}${d}/dd?prevExist=true&dir=true&ttl=100`), get(`${K}${d}/dd`)] },
  { name: 'listing shows ttl', reqs: (d) => [put(`${K}${d}/l/a?ttl=100`, 'value=1'), put(`${K}${d}/l/b`, 'value=2'), get(`${K}${d}/l?sorted=true`)] },
  { name: 'refresh set', reqs: (d) => [put(`${K}${d}/r?ttl=100`, 'value=a'), put(`${K}${d}/r?refresh=true&ttl=50`), get(`${K}${d}/r`)] },
  { name: 'refresh prevExist', reqs: (d) => [put(`${K}${d}/r?ttl=100`, 'value=a'), put(`${K}${d}/r?refresh=true&prevExist=true&ttl=50`), get(`${K}${d}/r`)] },
  { name: 'refresh cas', reqs: (d) => [put(`${K}${d}/r?ttl=100`, 'value=a'), put(`${K}${d}/r?refresh=true&prevValue=a&ttl=50`), put(`${K}${d}/r?refresh=true&prevValue=zz&ttl=50`)] },
  { name: 'refresh missing', reqs: (d) => [put(`${K}${d}/r?refresh=true&ttl=50`)] },
  { name: 'refresh dir', reqs: (d) => [put(`${K}${d}/r?dir=true`), put(`${K}${d}/r?refresh=true&ttl=50`)] },
  { name: 'refresh create', reqs: (d) => [put(`${K}${d}/r?refresh=true&prevExist=false&ttl=30`)] },
  { name: 'refresh permanent file', reqs: (d) => [put(`${K}${d}/r`, 'value=a'), put(`${K}${d}/r?refresh=true&ttl=30`), get(`${K}${d}/r`)] },
  { name: 'huge ttl is permanent', reqs: (d) => [put(`${K}${d}/h?ttl=9000000000`, 'value=a')] },
  { name: 'delete ttl node', reqs: (d) => [put(`${K}${d}/x?ttl=100`, 'value=a'), del(`${K}${d}/x`)] },
  { name: 'waitIndex history', reqs: (d) => [put(`${K}${d}/w`, 'value=1'), put(`${K}${d}/w`, 'value=2'), get(`${K}${d}/w?wait=true&waitIndex=1`)] },
];

type WSeq = { readonly name: string; readonly pre: (d: string) => Req[]; readonly watch: (d: string) => string; readonly writes: (d: string) => Req[]; readonly stream?: number };
const wseqs: WSeq[] = [
  { name: 'wait set', pre: () => [], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [put(`${K}${d}/w`, 'value=1')] },
  { name: 'wait update prevNode', pre: (d) => [put(`${K}${d}/w`, 'value=0')], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [put(`${K}${d}/w?prevExist=true`, 'value=1')] },
  { name: 'wait cas', pre: (d) => [put(`${K}${d}/w`, 'value=0')], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [put(`${K}${d}/w?prevValue=0`, 'value=1')] },
  { name: 'wait delete', pre: (d) => [put(`${K}${d}/w`, 'value=0')], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [del(`${K}${d}/w`)] },
  { name: 'wait cad', pre: (d) => [put(`${K}${d}/w`, 'value=0')], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [del(`${K}${d}/w?prevValue=0`)] },
  { name: 'wait create', pre: () => [], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [put(`${K}${d}/w?prevExist=false`, 'value=1')] },
  { name: 'recursive child', pre: () => [], watch: (d) => `${K}${d}?wait=true&recursive=true`, writes: (d) => [put(`${K}${d}/a/b`, 'value=1')] },
  { name: 'non-recursive ignores child', pre: (d) => [put(`${K}${d}/w?dir=true`)], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [put(`${K}${d}/w/x`, 'value=1'), del(`${K}${d}/w?recursive=true`)] },
  { name: 'hidden skipped live', pre: () => [], watch: (d) => `${K}${d}?wait=true&recursive=true`, writes: (d) => [put(`${K}${d}/_h`, 'value=1'), put(`${K}${d}/v`, 'value=2')] },
  { name: 'dir delete seen inside', pre: (d) => [put(`${K}${d}/dd/x`, 'value=1')], watch: (d) => `${K}${d}/dd/x?wait=true`, writes: (d) => [del(`${K}${d}/dd?recursive=true`)] },
  { name: 'refresh not seen', pre: (d) => [put(`${K}${d}/w?ttl=100`, 'value=0')], watch: (d) => `${K}${d}/w?wait=true`, writes: (d) => [put(`${K}${d}/w?refresh=true&ttl=50`), put(`${K}${d}/w`, 'value=1')] },
  { name: 'stream two sets', pre: () => [], watch: (d) => `${K}${d}?wait=true&recursive=true&stream=true`, writes: (d) => [put(`${K}${d}/x`, 'value=1'), put(`${K}${d}/y`, 'value=2')], stream: 2 },
  { name: 'stream delete twice', pre: (d) => [put(`${K}${d}/w`, 'value=0')], watch: (d) => `${K}${d}/w?wait=true&stream=true`, writes: (d) => [del(`${K}${d}/w`)], stream: 2 },
];

describe('v2 TTL and watch vs etcd 3.4', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd (etcd 3.4)' }, () => {
  let etcd: Server | undefined;
  let ours: V2TestServer | undefined;
  before(async () => { [etcd, ours] = await Promise.all([startRealEtcd(), startV2Server()]); });
  after(async () => { await Promise.all([etcd?.stop(), ours?.close()]); });

  seqs.forEach((seq, i) => {
    test(seq.name, async () => {
      const reqs = seq.reqs(`/t${i}`);
      const [want, got] = await Promise.all([run(etcd!.clientUrl, reqs), run(ours!.url, reqs)]);
      assert.deepEqual(got, want);
    });
  });

  test('waitIndex older than the 1000-event window: 401', async () => {
    const check = async (base: string): Promise<unknown> => {
      for (let b = 0; b < 21; b++) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => fetch(`${base}${K}/fill/k${j}`, { method: 'PUT', body: `value=${b}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }).then((r) => r.text())));
      }
      const r = await fetch(`${base}${K}/nothing?wait=true&waitIndex=1`);
      const body = JSON.parse(await r.text()) as { errorCode: number; message: string; cause: string; index: number };
      const m = /^the requested history has been cleared \[(\d+)\/1\]$/.exec(body.cause);
      assert.ok(m, body.cause);
      return { status: r.status, errorCode: body.errorCode, message: body.message, window: body.index - Number(m[1]) };
    };
    assert.deepEqual(await check(ours!.url), await check(etcd!.clientUrl));
  });

  wseqs.forEach((w, i) => {
    test(`watch: ${w.name}`, async () => {
      const d = `/w${i}`;
      const once = async (base: string): Promise<unknown> => {
        await run(base, w.pre(d));
        return watchWhile(base, w.watch(d), w.writes(d), w.stream !== undefined ? { stream: w.stream } : {});
      };
      const want = await once(etcd!.clientUrl);
      const got = await once(ours!.url);
      assert.deepEqual(got, want);
    });
  });
});
