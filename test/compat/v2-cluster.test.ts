// Differential test of the v2 cluster endpoints (/v2/members, /v2/machines, /v2/stats/*): the same
// requests against real etcd 3.4 (--enable-v2) and our in-process server; status, content type, the
// etcd headers' presence and the JSON (structure, field order, field names) are compared after
// normalising member ids, names, URLs, times, durations and counters.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hasEtcd, startRealEtcd, type Server } from '../helpers/procs.js';
import { startV2Server, type V2TestServer } from '../v2/harness.js';

/** What a request needs to know about the server it is sent to. */
interface Self { readonly id: string; readonly peerUrl: string }
interface Req { readonly method: string; readonly path: string | ((s: Self) => string); readonly ctype?: string; readonly body?: string | ((s: Self) => string) }
interface Answer { readonly status: number; readonly headers: string; readonly body: unknown }

const HEADERS = ['content-type', 'x-etcd-cluster-id', 'allow', 'x-content-type-options', 'x-etcd-index'] as const;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
const DURATION = /^(\d+h)?(\d+m)?\d+(\.\d+)?(h|m|s|ms|µs|ns)$/;

function normalizeString(s: string, self: Self): string {
  if (TIME.test(s)) return '<time>';
  if (DURATION.test(s)) return '<duration>';
  if (s === self.id) return '<self>';
  return s.replace(/(https?|unixs?):\/\/[^\s,"]+/g, '<url>');
}

function normalizeJson(v: unknown, self: Self, key = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => normalizeJson(x, self));
  if (typeof v === 'number') return '<n>';
  if (typeof v === 'string') return key === 'name' ? '<name>' : normalizeString(v, self);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  // key order is part of the contract (Go struct order): Object.entries keeps it
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k === self.id ? '<self>' : k] = normalizeJson(x, self, k);
  return out;
}

async function selfOf(base: string): Promise<Self> {
  const r = await fetch(`${base}/v2/members`);
  const m = (await r.json() as { members: { id: string; peerURLs: string[] }[] }).members[0]!;
  return { id: m.id, peerUrl: m.peerURLs[0]! };
}

async function ask(base: string, self: Self, r: Req): Promise<Answer> {
  const init: RequestInit = { method: r.method, redirect: 'manual' };
  if (r.body !== undefined) init.body = typeof r.body === 'string' ? r.body : r.body(self);
  if (r.ctype !== undefined) init.headers = { 'content-type': r.ctype };
  const resp = await fetch(base + (typeof r.path === 'string' ? r.path : r.path(self)), init);
  const text = await resp.text();
  const ctype = resp.headers.get('content-type') ?? '';
  let body: unknown = text;
  if (ctype.startsWith('application/json') && text !== '') {
    // members answers end in a newline (json.Encoder), stats and errors do not: compare that too
    body = { json: normalizeJson(JSON.parse(text), self), newline: text.endsWith('\n') };
  } else body = text.split(', ').map((s) => normalizeString(s, self)).join(', ');
  const present = HEADERS.filter((h) => resp.headers.get(h) !== null)
    .map((h) => (h === 'content-type' || h === 'allow' ? `${h}=${resp.headers.get(h)}` : h));
  return { status: resp.status, headers: present.join(','), body };
}

const get = (path: string): Req => ({ method: 'GET', path });
const JSON_T = 'application/json';
const peers = (...urls: string[]): string => JSON.stringify({ peerURLs: urls });

const cases: Record<string, Req> = {
  'GET members': get('/v2/members'),
  'GET members/': get('/v2/members/'),
  'GET members/leader': get('/v2/members/leader'),
  'GET members/zz': get('/v2/members/zz'),
  'GET members/leader/x': get('/v2/members/leader/x'),
  'GET members/<self>': { method: 'GET', path: (s) => `/v2/members/${s.id}` },
  'HEAD members': { method: 'HEAD', path: '/v2/members' },
  'PATCH members': { method: 'PATCH', path: '/v2/members' },
  'GET machines': get('/v2/machines'),
  'HEAD machines': { method: 'HEAD', path: '/v2/machines' },
  'POST machines': { method: 'POST', path: '/v2/machines' },
  'GET stats/self': get('/v2/stats/self'),
  'GET stats/leader': get('/v2/stats/leader'),
  'GET stats/store': get('/v2/stats/store'),
  'POST stats/self': { method: 'POST', path: '/v2/stats/self' },
  'HEAD stats/store': { method: 'HEAD', path: '/v2/stats/store' },
  'PUT stats/leader': { method: 'PUT', path: '/v2/stats/leader' },
  'POST members form type': { method: 'POST', path: '/v2/members', ctype: 'application/x-www-form-urlencoded', body: peers('http://127.0.0.1:9') },
  'POST members no type': { method: 'POST', path: '/v2/members', body: peers('http://127.0.0.1:9') },
  'POST members peer exists': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: (s) => peers(s.peerUrl) },
  'POST members peer exists, charset': { method: 'POST', path: '/v2/members', ctype: 'Application/JSON; charset=utf-8', body: (s) => peers(s.peerUrl) },
  'POST members/x peer exists': { method: 'POST', path: '/v2/members/abc', ctype: JSON_T, body: (s) => peers(s.peerUrl) },
  'POST members bad scheme': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: peers('foo') },
  'POST members no port': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: peers('http://h') },
  'POST members path': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: peers('http://h:1/p') },
  'POST members empty list': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: peers() },
  'POST members no field': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: '{}' },
  'DELETE members': { method: 'DELETE', path: '/v2/members' },
  'DELETE members/': { method: 'DELETE', path: '/v2/members/' },
  'PUT members': { method: 'PUT', path: '/v2/members', ctype: JSON_T, body: peers('http://127.0.0.1:9') },
  'DELETE members/zz': { method: 'DELETE', path: '/v2/members/zz' },
  'DELETE members/ABC': { method: 'DELETE', path: '/v2/members/ABC' },
  'DELETE members/leader': { method: 'DELETE', path: '/v2/members/leader' },
  // the sole member: etcd's strict reconfiguration check refuses (500), as we do without Raft membership
  'DELETE members/<self>': { method: 'DELETE', path: (s) => `/v2/members/${s.id}` },
  'PUT members/abc': { method: 'PUT', path: '/v2/members/abc', ctype: JSON_T, body: peers('http://127.0.0.1:9') },
  'PUT members/zz': { method: 'PUT', path: '/v2/members/zz', ctype: JSON_T, body: peers('http://127.0.0.1:9') },
  'PUT members/abc form type': { method: 'PUT', path: '/v2/members/abc', ctype: 'application/x-www-form-urlencoded', body: peers('http://127.0.0.1:9') },
  'PUT members/abc bad url': { method: 'PUT', path: '/v2/members/abc', ctype: JSON_T, body: peers('ftp://h:1') },
};

// Go's encoding/json words syntax errors its own way: only status and shape are compared.
const badJson: Record<string, Req> = {
  'POST members bad json': { method: 'POST', path: '/v2/members', ctype: JSON_T, body: 'nope' },
  'PUT members/abc bad json': { method: 'PUT', path: '/v2/members/abc', ctype: JSON_T, body: 'x' },
};

describe('v2 cluster endpoints vs etcd 3.4', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd (etcd 3.4)' }, () => {
  let etcd: Server | undefined;
  let ours: V2TestServer | undefined;
  let etcdSelf: Self;
  let ourSelf: Self;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd(), startV2Server()]);
    [etcdSelf, ourSelf] = await Promise.all([selfOf(etcd.clientUrl), selfOf(ours.url)]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.close()]);
  });

  for (const [name, req] of Object.entries(cases)) {
    test(name, async () => {
      const [want, got] = await Promise.all([ask(etcd!.clientUrl, etcdSelf, req), ask(ours!.url, ourSelf, req)]);
      assert.deepEqual(got, want);
    });
  }

  for (const [name, req] of Object.entries(badJson)) {
    test(name, async () => {
      const [want, got] = await Promise.all([ask(etcd!.clientUrl, etcdSelf, req), ask(ours!.url, ourSelf, req)]);
      const shape = (a: Answer): unknown => ({ ...a, body: Object.keys((a.body as { json: object }).json) });
      assert.deepEqual(shape(got), shape(want));
    });
  }

  test('stats/self: uptime grows, our state is leader, ids agree with members', async () => {
    const s = await (await fetch(`${ours!.url}/v2/stats/self`)).json() as { id: string; state: string; leaderInfo: { leader: string; uptime: string } };
    assert.equal(s.id, ourSelf.id);
    assert.equal(s.leaderInfo.leader, ourSelf.id);
    assert.equal(s.state, 'StateLeader');
    assert.match(s.leaderInfo.uptime, DURATION);
  });

  test('members from the backend', async () => {
    const list = await ours!.backend.memberList({ linearizable: false });
    const body = await (await fetch(`${ours!.url}/v2/members`)).text();
    const m = list.members[0]!;
    assert.equal(body, `{"members":[{"id":"${m.ID.toString(16)}","name":${JSON.stringify(m.name)},"peerURLs":${JSON.stringify(m.peerURLs)},"clientURLs":${JSON.stringify(m.clientURLs)}}]}\n`);
    assert.equal(await (await fetch(`${ours!.url}/v2/machines`)).text(), m.clientURLs.join(', '));
  });

  test('a member update goes through the log and answers 204 as etcd does', async () => {
    // (Adds and removes are exercised on a 3-member cluster in test/cluster/membership.test.ts: on
    // a lone member they would leave it without a quorum.)
    const upd = await fetch(`${ours!.url}/v2/members/${ourSelf.id}`, { method: 'PUT', headers: { 'content-type': JSON_T }, body: peers(ourSelf.peerUrl) });
    assert.equal(upd.status, 204);
    assert.ok(upd.headers.get('x-etcd-cluster-id'));
  });
});

describe('v2 store statistics vs etcd 3.4', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd (etcd 3.4)' }, () => {
  let etcd: Server | undefined;
  let ours: V2TestServer | undefined;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd(), startV2Server()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.close()]);
  });

  const FORM_T = 'application/x-www-form-urlencoded';
  // Every kind of v2 operation, succeeding and failing; the counters' deltas must agree.
  const script: readonly { method: string; path: string; body?: string }[] = [
    { method: 'PUT', path: '/v2/keys/st/a', body: 'value=1' },
    { method: 'PUT', path: '/v2/keys/st/a/b', body: 'value=1' },
    { method: 'GET', path: '/v2/keys/st/a' },
    { method: 'GET', path: '/v2/keys/st/missing' },
    { method: 'GET', path: '/v2/keys/st?recursive=true' },
    { method: 'PUT', path: '/v2/keys/st/a?prevExist=false', body: 'value=2' },
    { method: 'PUT', path: '/v2/keys/st/n?prevExist=false', body: 'value=2' },
    { method: 'POST', path: '/v2/keys/st/q', body: 'value=2' },
    { method: 'PUT', path: '/v2/keys/st/a?prevExist=true', body: 'value=3' },
    { method: 'PUT', path: '/v2/keys/st/none?prevExist=true', body: 'value=3' },
    { method: 'PUT', path: '/v2/keys/st/a?prevValue=3', body: 'value=4' },
    { method: 'PUT', path: '/v2/keys/st/a?prevValue=9', body: 'value=4' },
    { method: 'DELETE', path: '/v2/keys/st/a?prevValue=9' },
    { method: 'DELETE', path: '/v2/keys/st/a?prevIndex=1' },
    { method: 'DELETE', path: '/v2/keys/st/n?prevValue=2' },
    { method: 'DELETE', path: '/v2/keys/st/a' },
    { method: 'DELETE', path: '/v2/keys/st/a' },
    { method: 'DELETE', path: '/v2/keys/st?dir=true' },
    { method: 'PUT', path: '/v2/keys/st/d?dir=true' },
    { method: 'PUT', path: '/v2/keys/st/d?dir=true' },
  ];

  async function deltas(base: string): Promise<Record<string, number>> {
    const stats = async (): Promise<Record<string, number>> => (await (await fetch(`${base}/v2/stats/store`)).json()) as Record<string, number>;
    const before = await stats();
    for (const r of script) {
      const resp = await fetch(base + r.path, { method: r.method, ...(r.body !== undefined ? { body: r.body, headers: { 'content-type': FORM_T } } : {}) });
      await resp.text();
    }
    const now = await stats();
    return Object.fromEntries(Object.keys(now).map((k) => [k, (now[k] ?? 0) - (before[k] ?? 0)]));
  }

  // Two documented differences (README, compatibility notes): etcd 3.4's getsFail also counts the
  // server's own lookups (one per set, two per failed GET), and its compareAndDelete counts a
  // failed comparison as a success (the error is returned without reaching the deferred counter).
  const DIFFER = ['getsFail', 'compareAndDeleteSuccess', 'compareAndDeleteFail'];
  test('every counter moves as etcd\'s does (but the two documented ones), fields in etcd\'s order', async () => {
    const [want, got] = await Promise.all([deltas(etcd!.clientUrl), deltas(ours!.url)]);
    assert.deepEqual(Object.keys(got), Object.keys(want));
    const without = (o: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(o).filter(([k]) => !DIFFER.includes(k)));
    assert.deepEqual(without(got), without(want));
    assert.deepEqual([got.getsFail, got.compareAndDeleteSuccess, got.compareAndDeleteFail], [1, 1, 2]);
    assert.equal(want.compareAndDeleteSuccess! + want.compareAndDeleteFail!, 3);
  });
});
