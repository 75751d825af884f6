// Property-based fuzzing of the v2 long polls (GET ?wait=true) and streams (stream=true), which
// the request fuzzing (lib.ts) leaves out because a poll that opens waits for a later write.
//
// A case is a small scenario under its own root directory: setup writes, one to three polls
// (valid and broken wait/waitIndex/recursive/stream/sorted/quorum values, odd paths, other
// methods), then trigger writes (set, create, update, mkdir, POST, delete, recursive directory
// delete, compareAndDelete, TTL 0/1 so that the store's sweeper expires nodes, a v3 compaction)
// while the polls wait; some clients hang up mid-poll. Every v2 event the server ever produced
// is kept in one log (index -> the write's own answer, expiries learned by a poll), so the first
// event a poll must get is computed independently of the server by etcd 3.4's matching rules
// (spec 9.3: history scan, live notification, hidden keys, directory deletes, stream quirks).
//
// Per case (ours): no 5xx, no server error log line, every error a v2 errorCode JSON with
// etcd's status, every fired event the one the log says (same action, node, prevNode, index >=
// waitIndex, under the watched path), HashKV unchanged by the polls, and after every client went
// away the watcher gauges (long polls, shared-watch subscribers, MVCC watchers, /v2/stats/store
// watchers) back at their baseline. The same scenarios also run against real etcd 3.4 native v2
// (runV2WatchDiff): their transcripts, indexes made relative, must be equal.
import fc from 'fast-check';
import { Agent } from 'undici';
import { runSuite, type FuzzServer, type Outcome, type SuiteResult } from './lib.js';

const CALL_TIMEOUT_MS = 5_000;
/** How long a poll with nothing (more) to receive is left open before the client cuts it. */
const QUIET_MS = Number(process.env.FUZZ_WATCH_QUIET_MS ?? 60);
/** How long an event the log says is due may take to arrive. */
const DUE_MS = 3_000;

// ---------------------------------------------------------------------------------------------
// the scenario model

/** Nodes relative to the case root ('' is the root itself): files, hidden ones, a nested dir. */
const TARGETS = ['k', '_h', 'd', 'd/k', 'd/_h', 'd/e', 'd/e/k', '_hd', '_hd/k', ''] as const;
type Target = (typeof TARGETS)[number];

export type Write =
  | { readonly op: 'set' | 'create' | 'update' | 'post' | 'cad'; readonly at: Target; readonly value: string; readonly ttl?: '0' | '1' }
  | { readonly op: 'mkdir'; readonly at: Target; readonly ttl?: '0' | '1' }
  | { readonly op: 'delete' | 'rmdir'; readonly at: Target }
  | { readonly op: 'compact' };

export type WaitIndex =
  | { readonly kind: 'none' }
  /** The index before the polls plus k (k <= 0: history, 1: the next write, > 1: future). */
  | { readonly kind: 'rel'; readonly k: number }
  /** The index of the i-th successful setup write (a history hit on purpose). */
  | { readonly kind: 'setup'; readonly i: number }
  /** The index of the last setup write on the poll's own node (a history hit on that node). */
  | { readonly kind: 'own' }
  /** Far older than the 1000-event window: 401 EcodeEventIndexCleared. */
  | { readonly kind: 'far' }
  /** Around the oldest index the window holds (cur - 999 + k). */
  | { readonly kind: 'edge'; readonly k: number }
  | { readonly kind: 'raw'; readonly v: string };

export type PathStyle = 'plain' | 'slash' | 'double' | 'dotdot' | 'pct' | 'pctdot' | 'long';

export interface Poll {
  /** A target under the case root, or the server's root '/'. */
  readonly at: Target | '/';
  readonly style: PathStyle;
  readonly longN: number;
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  readonly wait: string | undefined;
  readonly waitIndex: WaitIndex;
  readonly recursive: string | undefined;
  readonly stream: string | undefined;
  readonly sorted: string | undefined;
  readonly quorum: string | undefined;
  readonly junk: readonly [string, string] | undefined;
  /** PUT/POST: the parameters go in a form body instead of the query. */
  readonly inBody: boolean;
  /** The client hangs up this long after the poll was registered. */
  readonly hangUpMs: number | undefined;
}

export interface WatchCase {
  readonly setup: readonly Write[];
  readonly polls: readonly Poll[];
  readonly trigger: readonly Write[];
}

const GO_TRUE = ['1', 't', 'T', 'true', 'TRUE', 'True'] as const;
const GO_FALSE = ['0', 'f', 'F', 'false', 'FALSE', 'False'] as const;
const BAD_BOOLS = ['', 'yes', 'truee', '2', ' true', 'on'] as const;
const isTrue = (v: string | undefined): boolean => v !== undefined && (GO_TRUE as readonly string[]).includes(v);
const isBool = (v: string | undefined): boolean => v === undefined || isTrue(v) || (GO_FALSE as readonly string[]).includes(v);

const DELETES = new Set(['delete', 'compareAndDelete', 'expire']);

// ---------------------------------------------------------------------------------------------
// generators

const valueArb = fc.constantFrom('a', 'b', '', 'x y', '\u00e9\u{1F600}', 'v'.repeat(300));
const targetArb = fc.constantFrom(...TARGETS);

function writeArb(opts: { ttl: boolean; compact: boolean }, at: fc.Arbitrary<Target>): fc.Arbitrary<Write> {
  // TTL 0 expires at once (the sweeper's timer), TTL 1 after a second: rare, a case then waits.
  const ttl = opts.ttl ? rarely(fc.constantFrom<'0' | '1'>('0', '0', '0', '0', '1'), 5).map((t) => t ?? null) : fc.constant(null);
  const arbs: { arbitrary: fc.Arbitrary<Write>; weight: number }[] = [
    { arbitrary: fc.record({ at, value: valueArb, ttl }).map(({ at: a, value, ttl: t }) => (t === null ? { op: 'set', at: a, value } : { op: 'set', at: a, value, ttl: t })), weight: 8 },
    { arbitrary: fc.record({ op: fc.constantFrom('create', 'update', 'cad'), at, value: valueArb }).map((w) => w as Write), weight: 3 },
    { arbitrary: fc.record({ at, value: valueArb }).map(({ at: a, value }) => ({ op: 'post', at: a, value }) as Write), weight: 1 },
    { arbitrary: fc.record({ at, ttl }).map(({ at: a, ttl: t }) => (t === null ? { op: 'mkdir', at: a } : { op: 'mkdir', at: a, ttl: t }) as Write), weight: 2 },
    { arbitrary: fc.record({ op: fc.constantFrom('delete', 'rmdir'), at }).map((w) => w as Write), weight: 4 },
  ];
  if (opts.compact) arbs.push({ arbitrary: fc.constant({ op: 'compact' } as Write), weight: 1 });
  return fc.oneof(...arbs);
}

/** `arb` one time in `n`, else undefined. */
function rarely<T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: n - 1 }, { arbitrary: arb, weight: 1 });
}

const boolParamArb = (trueWeight: number): fc.Arbitrary<string | undefined> => fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 6 },
  { arbitrary: fc.constantFrom(...GO_TRUE), weight: trueWeight },
  { arbitrary: fc.constantFrom(...GO_FALSE), weight: 2 },
  { arbitrary: fc.constantFrom(...BAD_BOOLS), weight: 1 },
);

const waitIndexArb: fc.Arbitrary<WaitIndex> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'none' } as const), weight: 6 },
  { arbitrary: fc.integer({ min: -6, max: 3 }).map((k) => ({ kind: 'rel', k }) as const), weight: 6 },
  { arbitrary: fc.nat({ max: 3 }).map((i) => ({ kind: 'setup', i }) as const), weight: 4 },
  { arbitrary: fc.constant({ kind: 'own' } as const), weight: 4 },
  { arbitrary: fc.constant({ kind: 'far' } as const), weight: 1 },
  { arbitrary: fc.integer({ min: -2, max: 2 }).map((k) => ({ kind: 'edge', k }) as const), weight: 1 },
  { arbitrary: fc.constantFrom('0', '-1', 'abc', '1.5', '', ' 3', '0x10', '18446744073709551615', '18446744073709551616', '99999999999').map((v) => ({ kind: 'raw', v }) as const), weight: 2 },
);

function pollArb(opts: { hangUps: boolean; oddPaths: boolean }, atArb: fc.Arbitrary<Target | '/'>): fc.Arbitrary<Poll> {
  const styles: PathStyle[] = opts.oddPaths ? ['plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'slash', 'double', 'dotdot', 'pct', 'pctdot', 'long'] : ['plain'];
  return fc.record({
    at: atArb,
    style: fc.constantFrom(...styles),
    longN: fc.integer({ min: 200, max: 2500 }),
    method: fc.oneof({ arbitrary: fc.constant('GET' as const), weight: 20 }, { arbitrary: fc.constantFrom('HEAD', 'PUT', 'POST', 'DELETE') as fc.Arbitrary<Poll['method']>, weight: 1 }),
    wait: fc.oneof({ arbitrary: fc.constant('true'), weight: 20 }, { arbitrary: fc.constantFrom(...GO_TRUE), weight: 2 },
      { arbitrary: fc.constantFrom<string | undefined>(undefined, 'false', '0'), weight: 1 }, { arbitrary: fc.constantFrom(...BAD_BOOLS), weight: 1 }),
    waitIndex: waitIndexArb,
    recursive: boolParamArb(6),
    stream: boolParamArb(4),
    sorted: boolParamArb(1),
    quorum: fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary: boolParamArb(2), weight: 1 }),
    junk: rarely(fc.constantFrom<[string, string]>(['x', 'y'], ['value', 'v'], ['ttl', '5'], ['prevExist', 'maybe'], ['dir', 'true'], ['noValueOnSuccess', 'true']), 6),
    inBody: fc.boolean(),
    hangUpMs: opts.hangUps ? rarely(fc.nat({ max: 40 }), 4) : fc.constant(undefined),
  }).map((p) => {
    // A wait that is not a valid true on a writing method would make the "poll" a write: keep
    // those methods to requests the server must refuse (209), as the point here is the polls.
    if (p.method === 'PUT' || p.method === 'POST' || p.method === 'DELETE') {
      if (!isTrue(p.wait) && isBool(p.wait)) return { ...p, wait: 'true' };
    }
    return p;
  });
}

export function watchCaseArb(opts: { ttl: boolean; ttlLastOnly: boolean; compact: boolean; hangUps: boolean; oddPaths: boolean }): fc.Arbitrary<WatchCase> {
  // Each case works on one to three nodes (mostly), so that its writes and polls meet: a delete
  // follows a set, a poll's waitIndex names a write on its own node.
  return fc.subarray([...TARGETS], { minLength: 1, maxLength: 3 }).chain((focus) => {
    const at = fc.oneof({ arbitrary: fc.constantFrom(...focus), weight: 6 }, { arbitrary: targetArb, weight: 1 });
    return fc.record({
      // A setup delete mostly has something to delete: a set of that node before it.
      setup: fc.array(fc.tuple(writeArb({ ttl: false, compact: false }, at), fc.boolean()), { maxLength: 4 })
        .map((ws) => ws.flatMap(([w, pre]): Write[] => (w.op === 'delete' && pre ? [{ op: 'set', at: w.at, value: 'a' }, w] : [w]))),
      trigger: fc.array(writeArb(opts, at), { maxLength: 3 }),
    });
  }).chain(({ setup, trigger }) => {
    // Polls mostly watch the nodes the case writes (so that deletes, history hits and expiries
    // land on them), sometimes any node or the server's root.
    const written = [...new Set([...setup, ...trigger].flatMap((w) => ('at' in w ? [w.at] : [])))];
    const atArb = fc.oneof(
      { arbitrary: written.length > 0 ? fc.constantFrom(...written) : targetArb, weight: 8 },
      { arbitrary: targetArb, weight: 4 },
      { arbitrary: fc.constant('/' as const), weight: 1 },
    );
    return fc.array(pollArb(opts, atArb), { minLength: 1, maxLength: 3 }).map((polls) => ({ setup, polls, trigger }));
  }).map((c) => (opts.ttlLastOnly
    // The differential: a TTL only on the last trigger write, so that the expiry's place in the
    // index order does not depend on the servers' timing.
    ? { ...c, trigger: c.trigger.map((w, i) => (i < c.trigger.length - 1 ? stripTtl(w) : w)) }
    : c));
}

function stripTtl(w: Write): Write {
  const { ttl: _t, ...rest } = w as Write & { ttl?: string };
  return rest as Write;
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface Endpoint {
  readonly base: string;
  readonly agent: Agent;
}

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
}

// Requests go through Dispatcher.request (origin + raw path): undici's request(url) would parse the
// URL the WHATWG way and resolve "/x/.." and "/%2e%2e" before sending, hiding them from the server.
async function call(ep: Endpoint, method: string, path: string, body?: string, contentType?: string): Promise<Answer> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), CALL_TIMEOUT_MS);
  try {
    const res = await ep.agent.request({
      origin: ep.base, path, method, body: body ?? null, signal: ac.signal,
      headers: contentType === undefined ? {} : { 'content-type': contentType },
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: flatHeaders(res.headers), text };
  } finally {
    clearTimeout(timer);
  }
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

/** A poll in flight: its headers (registration), its body as it arrives, a hang-up. */
class PollRun {
  status = 0;
  headers: Record<string, string> = {};
  text = '';
  /** The server ended the response. */
  ended = false;
  /** The client (us) cut it. */
  cut = false;
  error: string | undefined;
  readonly registered: Promise<void>;
  readonly finished: Promise<void>;
  private readonly ac = new AbortController();

  constructor(ep: Endpoint, method: string, path: string, body: string | undefined) {
    let reg!: () => void;
    this.registered = new Promise((r) => (reg = r));
    this.finished = (async () => {
      try {
        const res = await ep.agent.request({
          origin: ep.base, path, method, body: body ?? null, signal: this.ac.signal,
          headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' },
        });
        this.status = res.statusCode;
        this.headers = flatHeaders(res.headers);
        reg();
        res.body.setEncoding('utf8');
        for await (const chunk of res.body) this.text += chunk as string;
        this.ended = true;
      } catch (e) {
        if (this.ac.signal.aborted) this.cut = true;
        else this.error = e instanceof Error ? e.message : String(e);
      } finally {
        reg();
      }
    })();
  }

  hangUp(): void {
    if (!this.ended) this.ac.abort();
  }

  /** The complete JSON lines received so far. */
  lines(): string[] {
    const parts = this.text.split('\n');
    parts.pop();
    return parts.filter((l) => l !== '');
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 3));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// the event log and etcd 3.4's matching rules (the oracle)

interface V2NodeJson {
  key?: string;
  value?: string;
  dir?: boolean;
  ttl?: number;
  expiration?: string;
  modifiedIndex?: number;
  createdIndex?: number;
  nodes?: V2NodeJson[];
}

export interface V2EventJson {
  action: string;
  node: V2NodeJson;
  prevNode?: V2NodeJson;
}

export interface Entry {
  readonly index: number;
  readonly action: string;
  readonly key: string;
  readonly dir: boolean;
  readonly event: V2EventJson;
}

/** Every v2 event of the server, by index (the writes' own answers, expiries learned by polls). */
export class EventLog {
  private readonly byIndex = new Map<number, Entry>();
  private sorted: Entry[] | undefined;

  add(index: number, event: V2EventJson): void {
    const key = event.node.key ?? '/';
    this.byIndex.set(index, { index, action: event.action, key, dir: event.node.dir === true || event.prevNode?.dir === true, event });
    this.sorted = undefined;
  }

  get(index: number): Entry | undefined {
    return this.byIndex.get(index);
  }

  entries(): Entry[] {
    this.sorted ??= [...this.byIndex.values()].sort((a, b) => a.index - b.index);
    return this.sorted;
  }

  /** Whether node `p` existed just before index `i` (from the logged writes; '/' always). */
  existedBefore(p: string, i: number): boolean {
    if (p === '/') return true;
    const all = this.entries();
    for (let j = all.length - 1; j >= 0; j--) {
      const e = all[j]!;
      if (e.index >= i) continue;
      const del = DELETES.has(e.action);
      if (e.key === p) return !del;
      if (p.startsWith(e.key + '/')) {
        if (del || !e.dir) return false;
      } else if (e.key.startsWith(p + '/') && !del) return true;
    }
    return false;
  }
}

export interface WatchSpec {
  readonly path: string;
  readonly recursive: boolean;
  readonly stream: boolean;
  /** The first index of interest (waitIndex, or registration index + 1). */
  readonly from: number;
  /** The index at registration (X-Etcd-Index): events up to it are history. */
  readonly cur: number;
}

function hiddenBelow(watched: string, key: string): boolean {
  return ('/' + key.slice(watched.length)).includes('/_');
}

/** etcd 3.4 (spec 9.3): does the event at `e` reach a watch of `w`? */
export function reaches(log: EventLog, w: WatchSpec, e: Entry): boolean {
  if (e.key === w.path) return true;
  const under = w.path === '/' ? e.key.startsWith('/') : e.key.startsWith(w.path + '/');
  const dirGone = (e.action === 'delete' || e.action === 'expire') && e.dir;
  if (e.index <= w.cur) {
    // History scan: no hidden filtering, a directory delete matches by plain string prefix.
    return (w.recursive && under) || (dirGone && w.path.startsWith(e.key));
  }
  // Live: ancestors' recursive watchers unless a hidden component lies between; a deleted
  // directory notifies the watchers registered on nodes that existed inside it.
  if (w.recursive && under && !hiddenBelow(w.path, e.key)) return true;
  return DELETES.has(e.action) && e.dir && w.path.startsWith(e.key + '/') && log.existedBefore(w.path, e.index);
}

/** What a watch must deliver, in order, given the events logged so far (streams' quirks included). */
export function expectedEvents(log: EventLog, w: WatchSpec): Entry[] {
  const out: Entry[] = [];
  for (const e of log.entries()) {
    if (e.index < w.from || !reaches(log, w, e)) continue;
    out.push(e);
    // A history hit ends a long poll and leaves a stream silent (its watcher is never registered).
    if (!w.stream || e.index <= w.cur) return out;
    // A stream registered on the deleted node's own path gets the event twice.
    if (e.key === w.path && DELETES.has(e.action)) out.push(e);
  }
  return out;
}

/** The fields a watch's copy of an event must share with the write's answer (ttl counts down). */
function comparable(e: V2EventJson): string {
  const strip = (n: V2NodeJson | undefined): V2NodeJson | undefined => {
    if (n === undefined) return undefined;
    const { ttl: _ttl, ...rest } = n;
    return rest;
  };
  return JSON.stringify({ action: e.action, node: strip(e.node), prevNode: strip(e.prevNode) });
}

/** etcd's HTTP status of a v2 errorCode (default 400), plus our 429 for the per-client poll limit. */
function etcdStatusOf(code: number): number {
  switch (code) {
    case 100: return 404;
    case 101: case 105: return 412;
    case 102: case 108: return 403;
    case 110: return 401;
    case 300: case 301: return 500;
    default: return 400;
  }
}

function checkErrorAnswer(text: string, status: number): { problem?: string; code?: number } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return { problem: `error answer is not JSON: ${status} ${text.slice(0, 200)}` };
  }
  const o = j as Record<string, unknown>;
  const keys = Object.keys(o ?? {}).sort().join(',');
  if (keys !== 'errorCode,index,message' && keys !== 'cause,errorCode,index,message') return { problem: `error fields ${keys}: ${text.slice(0, 200)}` };
  if (typeof o.errorCode !== 'number' || typeof o.index !== 'number' || typeof o.message !== 'string') return { problem: `error field types: ${text.slice(0, 200)}` };
  if (etcdStatusOf(o.errorCode) !== status) return { problem: `errorCode ${o.errorCode} answered with HTTP ${status} (etcd: ${etcdStatusOf(o.errorCode)})` };
  return { code: o.errorCode };
}

// ---------------------------------------------------------------------------------------------
// running one case against one server

/** What one poll did, indexes relative to the case's base (the differential compares these). */
export interface PollTranscript {
  readonly status: number;
  readonly location?: string;
  readonly errorCode?: number;
  readonly cause?: string;
  readonly index?: number;
  readonly registeredAt?: number;
  readonly events: readonly string[];
  readonly body?: string;
}

export interface CaseTranscript {
  readonly writes: readonly string[];
  readonly polls: readonly PollTranscript[];
}

export interface CaseContext {
  readonly ep: Endpoint;
  readonly log: EventLog;
  /** Ours: HashKV and the watcher gauges are checked; real etcd: transcript only. */
  readonly ours?: FuzzServer;
  /** Highest compacted revision so far (ours; polls from at or below it get 401). */
  compacted: number;
}

const FORM = 'application/x-www-form-urlencoded';
const enc = encodeURIComponent;

function nodePath(root: string, at: Target): string {
  return at === '' ? root : `${root}/${at}`;
}

function indexOf(a: Answer): number {
  return Number(a.headers['x-etcd-index'] ?? NaN);
}

/** Sends one write; logs its event when it succeeded; returns problems and a transcript line. */
async function doWrite(ctx: CaseContext, root: string, w: Write, base: number): Promise<{ problems: string[]; line: string; ttlKey?: { key: string; index: number } }> {
  if (w.op === 'compact') {
    const ours = ctx.ours!;
    const r = await ours.http('POST', '/v3/kv/range', JSON.stringify({ key: Buffer.from('x').toString('base64') }));
    const rev = Number((JSON.parse(r.body) as { header: { revision: string } }).header.revision);
    const c = await ours.http('POST', '/v3/kv/compaction', JSON.stringify({ revision: String(rev) }));
    if (c.status === 200) ctx.compacted = Math.max(ctx.compacted, rev);
    return { problems: c.status >= 500 ? [`compaction: HTTP ${c.status} ${c.body.slice(0, 200)}`] : [], line: `compact ${c.status}` };
  }
  const key = nodePath(root, w.at);
  const ttl = 'ttl' in w && w.ttl !== undefined ? `&ttl=${w.ttl}` : '';
  const value = 'value' in w ? `value=${enc(w.value)}` : '';
  let a: Answer;
  switch (w.op) {
    case 'set': a = await call(ctx.ep, 'PUT', `/v2/keys${key}`, value + ttl, FORM); break;
    case 'create': a = await call(ctx.ep, 'PUT', `/v2/keys${key}`, `${value}&prevExist=false`, FORM); break;
    case 'update': a = await call(ctx.ep, 'PUT', `/v2/keys${key}`, `${value}&prevExist=true`, FORM); break;
    case 'post': a = await call(ctx.ep, 'POST', `/v2/keys${key}`, value, FORM); break;
    case 'mkdir': a = await call(ctx.ep, 'PUT', `/v2/keys${key}`, `dir=true${ttl}`, FORM); break;
    case 'delete': a = await call(ctx.ep, 'DELETE', `/v2/keys${key}`); break;
    case 'rmdir': a = await call(ctx.ep, 'DELETE', `/v2/keys${key}?recursive=true`); break;
    case 'cad': a = await call(ctx.ep, 'DELETE', `/v2/keys${key}?prevValue=${enc(w.value)}`); break;
  }
  const problems: string[] = [];
  const what = `${w.op} ${key}`;
  if (a.status >= 500) problems.push(`${what}: HTTP ${a.status} ${a.text.slice(0, 200)}`);
  if (a.status >= 400) {
    const e = checkErrorAnswer(a.text, a.status);
    if (e.problem !== undefined) problems.push(`${what}: ${e.problem}`);
    return { problems, line: `${w.op} ${w.at} ${a.status} ${e.code ?? ''}` };
  }
  const index = indexOf(a);
  let ev: V2EventJson;
  try {
    ev = JSON.parse(a.text) as V2EventJson;
  } catch {
    return { problems: [...problems, `${what}: answer not JSON: ${a.text.slice(0, 200)}`], line: `${w.op} ${a.status} ?` };
  }
  if (ev.node?.modifiedIndex !== index) problems.push(`${what}: node.modifiedIndex ${ev.node?.modifiedIndex} != X-Etcd-Index ${index}`);
  ctx.log.add(index, ev);
  const ttlKey = ttl !== '' ? { key: ev.node.key ?? key, index } : undefined;
  return { problems, line: `${w.op} ${w.at} ${a.status} ${normalizeEvent(ev, base, root)}`, ...(ttlKey ? { ttlKey } : {}) };
}

/** The wire path of a poll and the key it watches (undefined: a path etcd's mux redirects). */
function pollPath(root: string, p: Poll): { wire: string; key: string | undefined } {
  const key = p.at === '/' ? '/' : nodePath(root, p.at);
  const k = key === '/' ? '' : key;
  switch (p.style) {
    case 'plain': return { wire: `/v2/keys${k}` + (k === '' ? '/' : ''), key };
    case 'slash': return { wire: `/v2/keys${k}/`, key };
    case 'double': return { wire: `/v2/keys/${k}`, key: k === '' ? '/' : undefined };
    case 'dotdot': return { wire: `/v2/keys${k}/x/..`, key: undefined };
    // Every character of the key escaped, its inner slashes too (Go decodes the path before routing).
    case 'pct': return { wire: `/v2/keys/${[...k.slice(1)].map((c) => (c === '/' ? '%2F' : `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)).join('')}`, key };
    case 'pctdot': return { wire: `/v2/keys${k}/%2e%2e`, key: undefined };
    case 'long': return { wire: `/v2/keys${k}/${'x'.repeat(p.longN)}`, key: `${k}/${'x'.repeat(p.longN)}` };
  }
}

function waitIndexValue(wi: WaitIndex, cur: number, setupIdx: readonly number[], log: EventLog, key: string | undefined): string | undefined {
  switch (wi.kind) {
    case 'own': return String([...setupIdx].reverse().find((i) => log.get(i)?.key === key) ?? cur);
    case 'none': return undefined;
    case 'rel': return String(Math.max(1, cur + wi.k));
    case 'setup': return String(setupIdx.length === 0 ? cur : setupIdx[wi.i % setupIdx.length]!);
    case 'far': return String(Math.max(1, cur - 1100));
    case 'edge': return String(Math.max(1, cur - 999 + wi.k));
    case 'raw': return wi.v;
  }
}

function normalizeIndex(n: number | undefined, base: number): string {
  return n === undefined ? '-' : `${n - base}`;
}

/** An event with indexes relative to `base` and POSTed keys (named after an index) made relative. */
export function normalizeEvent(ev: V2EventJson, base: number, root: string): string {
  // The warm-up writes run concurrently: which key and value got which index differs per server.
  if (ev.node?.key?.startsWith(WARM) === true) return JSON.stringify({ a: ev.action, n: { key: `${WARM}*`, m: normalizeIndex(ev.node.modifiedIndex, base) } });
  const key = (k: string | undefined): string | undefined => k?.replace(/\/(\d{20})(?=\/|$)/g, (_m, d: string) => `/#${Number(d) - base}`).replace(root, '$R');
  const node = (n: V2NodeJson | undefined): unknown => n === undefined ? undefined : {
    key: key(n.key), value: n.value, dir: n.dir, exp: n.expiration !== undefined,
    m: normalizeIndex(n.modifiedIndex, base), c: normalizeIndex(n.createdIndex, base),
  };
  return JSON.stringify({ a: ev.action, n: node(ev.node), p: node(ev.prevNode) });
}

/** Makes the numbers of a cause relative ("[46/4]" -> "[-999/-1100]"). */
function normalizeCause(c: string, base: number): string {
  return c.replace(/\[(\d+)\/(\d+)\]/, (_m, a: string, b: string) => `[${Number(a) - base}/${Number(b) - base}]`);
}

async function currentIndex(ctx: CaseContext, root: string): Promise<number> {
  const a = await call(ctx.ep, 'GET', `/v2/keys${root}/_probe`);
  return indexOf(a);
}

interface PollState {
  readonly poll: Poll;
  readonly run: PollRun;
  readonly key: string | undefined;
  readonly waitIndex: string | undefined;
  /** Set by settle for a registered watch: what it watches and what it was due. */
  spec?: WatchSpec;
  want?: Entry[];
  /** Problems found while waiting. */
  late?: string;
}

/** What the parameters make of a poll (etcd's parseKeyRequest): refused, a watch, or a GET. */
function classify(s: PollState): { malformed: boolean; isWatch: boolean } {
  const p = s.poll;
  const wi = s.waitIndex;
  const malformed = !isBool(p.wait) || !isBool(p.recursive) || !isBool(p.stream) || !isBool(p.sorted) || !isBool(p.quorum)
    || (wi !== undefined && !/^\d+$/.test(wi)) || (wi !== undefined && BigInt(wi) > 18446744073709551615n)
    || (isTrue(p.wait) && p.method !== 'GET') || p.junk?.[0] === 'prevExist';
  return { malformed, isWatch: !malformed && p.method === 'GET' && isTrue(p.wait) && !isTrue(p.quorum) };
}

/**
 * Waits until a registered watch has what the log says is due (a poll hung up by its client:
 * whatever came), then a quiet time for anything extra, then cuts it. Other answers just end.
 */
async function settle(ctx: CaseContext, s: PollState): Promise<void> {
  const { run } = s;
  if (s.key !== undefined && run.status === 200 && classify(s).isWatch) {
    const registeredAt = Number(run.headers['x-etcd-index']);
    const from = Number(s.waitIndex ?? 0) > 0 ? Number(s.waitIndex) : registeredAt + 1;
    s.spec = { path: s.key, recursive: isTrue(s.poll.recursive), stream: isTrue(s.poll.stream), from, cur: registeredAt };
    const want = expectedEvents(ctx.log, s.spec);
    s.want = want;
    if (s.poll.hangUpMs === undefined && want.length > 0
      && !(await until(() => run.lines().length >= want.length || run.ended || run.cut, DUE_MS))) {
      s.late = `due event(s) not delivered within ${DUE_MS} ms: want indexes ${want.map((e) => e.index).join(',')}, got ${run.lines().length}`;
    }
    // Anything more than due would show within the quiet time.
    if (!run.ended && !run.cut) await until(() => run.ended || run.cut || run.lines().length > want.length, QUIET_MS);
  }
  if (s.key === undefined || run.status !== 200 || classify(s).isWatch) run.hangUp();
  await Promise.race([run.finished, new Promise((r) => setTimeout(r, CALL_TIMEOUT_MS))]);
}

/**
 * Runs one scenario: setup, polls, triggers, learning expiries, then checks every poll. Problems
 * are property violations; the transcript is what the differential compares.
 */
export async function runCase(ctx: CaseContext, root: string, c: WatchCase): Promise<{ problems: string[]; transcript: CaseTranscript; rejected: boolean; bucket: string }> {
  const problems: string[] = [];
  const writes: string[] = [];
  const base = await currentIndex(ctx, root);
  const setupIdx: number[] = [];
  for (const w of c.setup) {
    const r = await doWrite(ctx, root, w, base);
    problems.push(...r.problems);
    writes.push(r.line);
    const last = ctx.log.entries().at(-1);
    if (last !== undefined && last.index > base && !setupIdx.includes(last.index)) setupIdx.push(last.index);
  }
  const cur = await currentIndex(ctx, root);
  const hashBefore = ctx.ours ? await ctx.ours.hashKV() : undefined;

  // Open the polls; each is registered when its headers arrive (etcd flushes them at once).
  const polls: PollState[] = c.polls.map((p) => {
    const { wire, key } = pollPath(root, p);
    const waitIndex = waitIndexValue(p.waitIndex, cur, setupIdx, ctx.log, key);
    const params: [string, string][] = [];
    if (p.wait !== undefined) params.push(['wait', p.wait]);
    if (waitIndex !== undefined) params.push(['waitIndex', waitIndex]);
    for (const n of ['recursive', 'stream', 'sorted', 'quorum'] as const) if (p[n] !== undefined) params.push([n, p[n]!]);
    if (p.junk !== undefined) params.push([...p.junk]);
    const qs = params.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
    const body = (p.method === 'PUT' || p.method === 'POST') && p.inBody ? qs : undefined;
    const url = body === undefined && qs !== '' ? `${wire}?${qs}` : wire;
    return { poll: p, run: new PollRun(ctx.ep, p.method, url, body), key, waitIndex };
  });
  const registered = await Promise.race([
    Promise.all(polls.map((s) => s.run.registered)).then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), CALL_TIMEOUT_MS)),
  ]);
  if (!registered) problems.push(`a poll got no headers within ${CALL_TIMEOUT_MS} ms`);
  if (ctx.ours && hashBefore) {
    const after = await ctx.ours.hashKV();
    const h = (x: typeof after): string => `hash ${x.hash} compact ${x.compactRevision} rev ${x.header?.revision}`;
    if (h(after) !== h(hashBefore)) problems.push(`store changed by the polls: ${h(hashBefore)} -> ${h(after)}`);
  }
  for (const s of polls) {
    if (s.poll.hangUpMs !== undefined) setTimeout(() => s.run.hangUp(), s.poll.hangUpMs).unref();
  }

  const ttlKeys: { key: string; index: number }[] = [];
  for (const w of c.trigger) {
    // A compaction would remove the history the expiry polls below start from: learn them first.
    if (w.op === 'compact') await learnExpiries(ctx, ttlKeys.splice(0), base, root, problems, writes);
    const r = await doWrite(ctx, root, w, base);
    problems.push(...r.problems);
    writes.push(r.line);
    if (r.ttlKey) ttlKeys.push(r.ttlKey);
  }
  await learnExpiries(ctx, ttlKeys, base, root, problems, writes);

  // Every poll receives what is due (concurrently), then each is judged.
  await Promise.all(polls.map((s) => settle(ctx, s)));
  const transcripts: PollTranscript[] = [];
  let allRejected = true;
  let bucket = '';
  for (const s of polls) {
    const r = await judgePoll(ctx, s, cur, base, root);
    problems.push(...r.problems.map((x) => `poll ${s.run.status} ${pollLabel(s)}: ${x}`));
    transcripts.push(r.transcript);
    if (!r.rejected) allRejected = false;
    // The case is counted under its most telling answer: a delivered event, then a refusal.
    if (bucket === '' || r.bucket.endsWith('event') || (r.bucket.includes('errorCode') && !bucket.endsWith('event'))) bucket = r.bucket;
  }
  for (const s of polls) s.run.hangUp();
  await Promise.all(polls.map((s) => s.run.finished));
  if (ctx.ours) {
    const leak = await watchersBack(ctx.ours);
    if (leak !== undefined) problems.push(leak);
    for (const line of ctx.ours.takeErrors()) problems.push(`server logged an error: ${line.slice(0, 600)}`);
  }
  return { problems, transcript: { writes, polls: transcripts }, rejected: allRejected, bucket };
}

/**
 * The sweeper expires TTL nodes on its own: learns each expiry (the next event on that key) with a
 * poll, so that the log is complete before the polls are judged and no expiry is left pending for
 * the next case.
 */
async function learnExpiries(ctx: CaseContext, ttlKeys: readonly { key: string; index: number }[], base: number, root: string, problems: string[], writes: string[]): Promise<void> {
  for (const t of ttlKeys) {
    const a = await call(ctx.ep, 'GET', `/v2/keys${t.key}?wait=true&waitIndex=${t.index + 1}`);
    if (a.status !== 200) {
      problems.push(`expiry poll on ${t.key}: HTTP ${a.status} ${a.text.slice(0, 200)}`);
      continue;
    }
    try {
      const ev = JSON.parse(a.text) as V2EventJson;
      if (ev.action === 'expire') {
        ctx.log.add(ev.node.modifiedIndex ?? 0, ev);
        writes.push(`expire ${normalizeEvent(ev, base, root)}`);
      }
    } catch {
      problems.push(`expiry poll on ${t.key}: not JSON: ${a.text.slice(0, 200)}`);
    }
  }
}

function pollLabel(s: PollState): string {
  return `${s.poll.method} ${s.key ?? '(redirect)'} wait=${s.poll.wait} waitIndex=${s.waitIndex} recursive=${s.poll.recursive} stream=${s.poll.stream} quorum=${s.poll.quorum}`;
}

async function judgePoll(ctx: CaseContext, s: PollState, cur: number, base: number, root: string): Promise<{ problems: string[]; transcript: PollTranscript; rejected: boolean; bucket: string }> {
  const { poll: p, run } = s;
  const problems: string[] = [];
  if (run.error !== undefined) problems.push(`client error: ${run.error}`);
  if (run.status >= 500) problems.push(`HTTP ${run.status}`);
  const redirected = s.key === undefined;
  const wi = s.waitIndex;
  const { malformed, isWatch } = classify(s);
  if (redirected) {
    if (run.status !== 301) problems.push(`odd path ${p.style}: HTTP ${run.status}, etcd's mux answers 301`);
    return { problems, transcript: { status: run.status, location: run.headers.location?.replace(root, '$R').replace(/waitIndex=(\d+)(?=&|$)/, (m, d: string) => (p.waitIndex.kind === 'raw' ? m : `waitIndex=${Number(d) - base}`)), events: [] }, rejected: true, bucket: '301' };
  }
  if (run.status === 301) problems.push('301 for a clean path');
  if (run.status >= 400) {
    const t: PollTranscript = { status: run.status, events: [] };
    if (p.method === 'HEAD') {
      // A HEAD has no body to check: a valid one may only miss its key.
      if (!malformed && run.status !== 404) problems.push(`HEAD refused with ${run.status} though its parameters are valid`);
      return { problems, transcript: t, rejected: true, bucket: `HEAD ${run.status}` };
    }
    const e = checkErrorAnswer(run.text, run.status);
    if (e.problem !== undefined) return { problems: [...problems, e.problem], transcript: t, rejected: true, bucket: `${run.status} bad` };
    const j = JSON.parse(run.text) as { cause?: string; index: number };
    const transcript = { ...t, errorCode: e.code!, cause: normalizeCause(j.cause ?? '', base), index: j.index === 0 ? 0 : j.index - base };
    if (isWatch) {
      const n = Number(wi ?? 0);
      const cleared = n > 0 && (n < cur - 999 || n <= ctx.compacted);
      if (!(e.code === 401 && cleared)) problems.push(`a valid watch refused: errorCode ${e.code} ${run.text.slice(0, 200)}`);
    } else if (malformed && ![203, 209].includes(e.code!)) problems.push(`malformed parameters answered errorCode ${e.code}, etcd: 203 or 209`);
    return { problems, transcript, rejected: true, bucket: `${run.status} errorCode ${e.code}` };
  }
  if (malformed) problems.push(`malformed parameters accepted: HTTP ${run.status}`);
  if (!isWatch) {
    // A plain GET (wait false, or quorum): answered at once, never a watch.
    await run.finished;
    if (p.method === 'GET') {
      try {
        const ev = JSON.parse(run.text) as V2EventJson;
        if (ev.action !== 'get') problems.push(`a GET answered action ${ev.action}`);
      } catch {
        problems.push(`GET answer not JSON: ${run.text.slice(0, 200)}`);
      }
    }
    return { problems, transcript: { status: run.status, events: [], body: p.method === 'GET' ? normalizeGet(run.text, base, root) : '' }, rejected: false, bucket: `${run.status} get` };
  }

  // A registered watch: compare what it received with what the log says it must.
  const spec = s.spec!;
  const want = s.want ?? [];
  const stream = spec.stream;
  const hungUp = p.hangUpMs !== undefined;
  if (spec.cur !== cur) problems.push(`X-Etcd-Index ${spec.cur} at registration, the store was at ${cur}`);
  if (run.headers['content-type'] !== 'application/json') problems.push(`content-type ${run.headers['content-type']}`);
  if (s.late !== undefined) problems.push(s.late);
  const registeredAt = spec.cur;
  const lines = run.lines();
  if (!stream && lines.length > 1) problems.push(`long poll delivered ${lines.length} events`);
  if (!stream && run.ended && lines.length === 0 && !hungUp) problems.push('long poll ended with no event');
  const events: string[] = [];
  for (const [i, line] of lines.entries()) {
    let ev: V2EventJson;
    try {
      ev = JSON.parse(line) as V2EventJson;
    } catch {
      problems.push(`event ${i} not JSON: ${line.slice(0, 200)}`);
      continue;
    }
    events.push(normalizeEvent(ev, base, root));
    problems.push(...checkEvent(ctx.log, spec, ev, want[i]).map((x) => `event ${i}: ${x}`));
  }
  if (lines.length > want.length) problems.push(`${lines.length} events delivered, ${want.length} due (indexes ${want.map((e) => e.index).join(',') || 'none'})`);
  return { problems, transcript: { status: run.status, registeredAt: registeredAt - base, events }, rejected: false, bucket: `200 ${stream ? 'stream' : 'poll'} ${lines.length > 0 ? 'event' : 'cut'}` };
}

function normalizeGet(text: string, base: number, root: string): string {
  try {
    const ev = JSON.parse(text) as V2EventJson;
    if (typeof ev.action === 'string') return normalizeEvent(ev, base, root);
    return text.replace(/"index":(\d+)/, (_m, d: string) => `"index":${Number(d) - base}`);
  } catch {
    return text;
  }
}

/** One delivered event against the watch and the log (structure first, then the log's copy). */
export function checkEvent(log: EventLog, w: WatchSpec, ev: V2EventJson, due: Entry | undefined): string[] {
  const out: string[] = [];
  if (typeof ev !== 'object' || ev === null || typeof ev.action !== 'string' || typeof ev.node !== 'object') return [`not an event: ${JSON.stringify(ev).slice(0, 200)}`];
  if (!['set', 'create', 'update', 'compareAndSwap', 'delete', 'compareAndDelete', 'expire'].includes(ev.action)) out.push(`action ${ev.action}`);
  const key = ev.node.key ?? '/';
  const idx = ev.node.modifiedIndex ?? 0;
  const inside = key === w.path || (w.recursive && (w.path === '/' || key.startsWith(w.path + '/'))) || (DELETES.has(ev.action) && ev.node.dir === true && w.path.startsWith(key));
  if (!inside) out.push(`key ${key} is not under the watched ${w.path}`);
  if (idx < w.from) out.push(`modifiedIndex ${idx} < ${w.from} (waitIndex or registration + 1)`);
  if (DELETES.has(ev.action) && ev.prevNode?.key !== key) out.push(`${ev.action} without its prevNode`);
  if (ev.action === 'create' && ev.prevNode !== undefined) out.push('create with a prevNode');
  const logged = log.get(idx);
  if (logged === undefined) out.push(`index ${idx} is no logged write`);
  else if (comparable(logged.event) !== comparable(ev)) out.push(`differs from the write's answer: got ${comparable(ev).slice(0, 300)} logged ${comparable(logged.event).slice(0, 300)}`);
  if (due === undefined) out.push(`not due (index ${idx})`);
  else if (due.index !== idx) out.push(`index ${idx}, due: ${due.index} (${due.action} ${due.key})`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// leaks

async function gauges(server: FuzzServer): Promise<string> {
  const m = await server.http('GET', '/metrics');
  const pick = (name: string): string => new RegExp(`^${name} (\\S+)$`, 'm').exec(m.body)?.[1] ?? '?';
  const stats = await server.http('GET', '/v2/stats/store');
  const storeWatchers = (JSON.parse(stats.body) as { watchers?: number }).watchers ?? 0;
  return `long_polls ${pick('etcd_gateway_v2_long_polls')} subscribers ${pick('etcd_gateway_v2_shared_watch_subscribers')} mvcc_watchers ${pick('etcd_debugging_mvcc_watcher_total')} store_watchers ${storeWatchers}`;
}

const baselines = new WeakMap<FuzzServer, string>();

/** undefined when the gauges are back at the server's baseline (within 3 s), else the problem. */
export async function watchersBack(server: FuzzServer): Promise<string | undefined> {
  const want = baselines.get(server);
  if (want === undefined) return undefined;
  const end = Date.now() + 3_000;
  for (;;) {
    const now = await gauges(server);
    if (now === want) return undefined;
    if (Date.now() > end) return `watchers leaked after every client went away: ${now} (baseline ${want})`;
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------------------------------------
// the suites

const WARM = '/_warm/';

/** 1,100 v2 writes, so that the 1000-event window is full and a far-back waitIndex is cleared. */
async function warmUp(ctx: CaseContext): Promise<void> {
  const N = 1100;
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < N) {
      const i = next++;
      const a = await call(ctx.ep, 'PUT', `/v2/keys${WARM}k${i % 50}`, `value=${i}`, FORM);
      if (a.status >= 300) throw new Error(`warm-up write: ${a.status} ${a.text}`);
      ctx.log.add(indexOf(a), JSON.parse(a.text) as V2EventJson);
    }
  }));
}

let roots = 0;

function newRoot(): string {
  return `/wf${++roots}`;
}

export async function v2WatchContext(server: FuzzServer): Promise<CaseContext> {
  const ctx: CaseContext = { ep: { base: server.url, agent: new Agent({ connections: 64 }) }, log: new EventLog(), ours: server, compacted: 0 };
  await warmUp(ctx);
  baselines.set(server, await gauges(server));
  return ctx;
}

/** The fuzz suite against our server: the properties above, per case. */
export async function runV2WatchFuzz(server: FuzzServer, opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }): Promise<SuiteResult> {
  const ctx = await v2WatchContext(server);
  try {
    const arb = watchCaseArb({ ttl: true, ttlLastOnly: false, compact: true, hangUps: true, oddPaths: true });
    return await runSuite('v2-watch', server, arb, async (c): Promise<Outcome> => {
      const r = await runCase(ctx, newRoot(), c);
      const wrote = c.setup.length + c.trigger.length > 0;
      return { problems: r.problems, rejected: r.rejected, mayWrite: wrote, bucket: r.bucket };
    }, opts);
  } finally {
    await ctx.ep.agent.close();
  }
}

/**
 * The differential: each scenario (no hang-ups, no compaction, a TTL only last) against real
 * etcd 3.4 native v2 and ours, transcripts compared. Returns the cases run and the differences.
 */
export async function runV2WatchDiff(ours: Endpoint, etcd: Endpoint, opts: { numRuns: number; seed: number }): Promise<{ cases: number; differences: string[]; seconds: number }> {
  const t0 = performance.now();
  const a: CaseContext = { ep: ours, log: new EventLog(), compacted: 0 };
  const b: CaseContext = { ep: etcd, log: new EventLog(), compacted: 0 };
  await Promise.all([warmUp(a), warmUp(b)]);
  const differences: string[] = [];
  let cases = 0;
  const arb = watchCaseArb({ ttl: true, ttlLastOnly: true, compact: false, hangUps: false, oddPaths: true });
  for (const c of fc.sample(arb, { numRuns: opts.numRuns, seed: opts.seed })) {
    cases++;
    const root = newRoot();
    const [ra, rb] = [await runCase(a, root, c), await runCase(b, root, c)];
    const ta = JSON.stringify(ra.transcript, null, 1);
    const tb = JSON.stringify(rb.transcript, null, 1);
    if (ta !== tb) differences.push(`case ${JSON.stringify(c)}\n  ours: ${JSON.stringify(ra.transcript)}\n  etcd: ${JSON.stringify(rb.transcript)}`);
  }
  return { cases, differences, seconds: (performance.now() - t0) / 1000 };
}
