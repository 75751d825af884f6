// Property-based fuzzing of the three client protocols against one in-process server (the same
// composition as the binary). Each suite generates requests with fast-check, sends them through a
// real HTTP or gRPC client and checks, per request:
//   - never HTTP 500 / gRPC INTERNAL or UNKNOWN except where etcd itself answers so (its known texts),
//   - a failure has the protocol's own error shape (v2 {"errorCode",...}, gateway {"error",...},
//     gRPC a status with etcd's text, never a stack trace),
//   - the server logged no error (every "unexpected error" path logs one),
//   - the store's HashKV (hash, compact revision and revision) is unchanged by every rejected
//     request and by every read-only one; accepted writes move the baseline.
// The generators keep out what would make the store change on its own between two requests
// (short TTLs, short leases) or wedge the server by design (adding a member to a one-member
// cluster, blocking Lock/Campaign): see the comments at each.
// Used by test/fuzz/*.test.ts (a fixed seed, a CI-sized run) and bench/fuzz.ts (more cases, counts).
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import { Agent } from 'undici';
import { gatewayRoutes } from '../../src/gateway/routes.js';
import { HashKVRequest, MaintenanceClient, type HashKVResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { startGateway, type GatewayServer } from '../gateway/harness.js';

const CALL_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// the server under test

export interface FuzzServer {
  readonly url: string;
  /** host:port for gRPC (the same port). */
  readonly endpoint: string;
  /** Error-level log lines since the last take (an unexpected error path ran). */
  takeErrors(): string[];
  hashKV(): Promise<HashKVResponse>;
  /** HTTP request with a timeout; the body is read whole (or up to the timeout). */
  http(method: string, path: string, body?: string, headers?: Record<string, string>, timeoutMs?: number): Promise<HttpAnswer>;
  grpcUnary(path: string, bytes: Uint8Array): Promise<GrpcAnswer>;
  /**
   * A bidi stream: writes the messages, waits up to `waitMs` for the server to end it, then
   * cancels. `ok` also when the client cancelled it; otherwise the server's end status.
   */
  grpcBidi(path: string, messages: readonly Uint8Array[], waitMs: number): Promise<GrpcAnswer & { responses: number }>;
  /** /health answers true and a write goes through: the process is alive and serving. */
  alive(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  /** The client gave up waiting (a stream that stays open: expected for watch-like routes). */
  readonly timedOut: boolean;
}

export type GrpcAnswer = { readonly ok: true } | { readonly ok: false; readonly code: number; readonly details: string };

/** A path as a browser would put it on the wire, dot segments kept: bytes HTTP forbids are escaped. */
function wirePath(p: string): string {
  return p.replace(/[^\x21-\x7e]|["<>`{}#]/gu, (c) => encodeURIComponent(c));
}

export async function startFuzzServer(): Promise<FuzzServer> {
  const errors: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
  const gw: GatewayServer = await startGateway([], undefined, { upstream: false, logger });
  const endpoint = gw.url.slice('http://'.length);
  const agent = new Agent({ connections: 8 });
  const maint = new MaintenanceClient(endpoint, grpc.credentials.createInsecure());
  const raw = new grpc.Client(endpoint, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  const http = async (method: string, path: string, body?: string, headers: Record<string, string> = {}, timeoutMs = CALL_TIMEOUT_MS): Promise<HttpAnswer> => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    let status = 0;
    let text = '';
    try {
      // Dispatcher.request sends the path as generated: request(url) would parse it the WHATWG way
      // and resolve "/..", "/." and "/%2e%2e" segments before the server sees them.
      const res = await agent.request({ origin: gw.url, path: wirePath(path), method, headers, body: body ?? null, signal: ac.signal });
      status = res.statusCode;
      res.body.setEncoding('utf8');
      for await (const chunk of res.body) text += chunk as string;
      return { status, body: text, timedOut: false };
    } catch (e) {
      if (ac.signal.aborted) return { status, body: text, timedOut: true };
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    url: gw.url,
    endpoint,
    takeErrors: () => errors.splice(0),
    hashKV: () => new Promise((res, rej) => maint.hashKv(HashKVRequest.fromPartial({ revision: 0n }), new grpc.Metadata(),
      { deadline: Date.now() + CALL_TIMEOUT_MS }, (e, r) => (e ? rej(e) : res(r)))),
    http,
    grpcUnary: (path, bytes) => new Promise((resolve) => {
      raw.makeUnaryRequest<Uint8Array, Buffer>(path, (x) => Buffer.from(x), (x) => x, bytes, new grpc.Metadata(),
        { deadline: Date.now() + CALL_TIMEOUT_MS }, (err) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true }));
    }),
    grpcBidi: (path, messages, waitMs) => new Promise((resolve) => {
      const s = raw.makeBidiStreamRequest<Uint8Array, Buffer>(path, (x) => Buffer.from(x), (x) => x, new grpc.Metadata(),
        { deadline: Date.now() + CALL_TIMEOUT_MS });
      let responses = 0;
      let cancelled = false;
      const timer = setTimeout(() => {
        cancelled = true;
        s.cancel();
      }, waitMs);
      s.on('data', () => responses++);
      s.on('error', (err: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve(cancelled && err.code === grpc.status.CANCELLED ? { ok: true, responses } : { ok: false, code: err.code, details: err.details, responses });
      });
      s.on('end', () => {
        clearTimeout(timer);
        resolve({ ok: true, responses });
      });
      for (const m of messages) s.write(m);
    }),
    async alive() {
      // A fuzzed Alarm request may have raised an alarm (accepted, as etcd would): disarm them
      // first, as an operator would, so /health and the write judge the process, not the alarm.
      const list = await http('POST', '/v3/maintenance/alarm', '{"action":"GET"}');
      const alarms = (JSON.parse(list.body) as { alarms?: { memberID?: string; alarm?: string }[] }).alarms ?? [];
      for (const a of alarms) await http('POST', '/v3/maintenance/alarm', JSON.stringify({ action: 'DEACTIVATE', memberID: a.memberID ?? '0', alarm: a.alarm ?? 'NONE' }));
      const h = await http('GET', '/health');
      if (h.status !== 200 || !h.body.includes('"health":"true"')) return `/health: ${h.status} ${h.body}`;
      const p = await http('POST', '/v3/kv/put', JSON.stringify({ key: Buffer.from('fuzz-alive').toString('base64'), value: 'eA==' }));
      if (p.status !== 200) return `put after the run: ${p.status} ${p.body}`;
      return undefined;
    },
    async close() {
      maint.close();
      raw.close();
      await agent.close();
      await gw.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// bookkeeping shared by the suites

export interface SuiteResult {
  readonly suite: string;
  readonly cases: number;
  /** Cases the server refused (an error answer): each checked against HashKV. */
  readonly rejected: number;
  /** Read-only cases answered with success (also checked against HashKV). */
  readonly reads: number;
  readonly failures: readonly string[];
  /** Answers by kind ("400 errorCode 209", "gRPC 3", ...): what the run exercised. */
  readonly buckets: ReadonlyMap<string, number>;
  readonly seconds: number;
}

/** One case's outcome, as a suite's `send` reports it. */
export interface Outcome {
  /** Problems with the answer itself (status, shape). */
  readonly problems: string[];
  /** The request was refused (an error answer). */
  readonly rejected: boolean;
  /** The store may have changed (an accepted write): HashKV is not compared. */
  readonly mayWrite: boolean;
  readonly bucket: string;
}

function hashOf(h: HashKVResponse): string {
  return `hash ${h.hash} compact ${h.compactRevision} rev ${h.header?.revision}`;
}

/**
 * Runs `numRuns` generated cases through `send`, checking every one; mode 'assert' stops at the
 * first failing case (fast-check then shrinks it and reports the seed), 'count' runs all of them.
 */
export async function runSuite<C>(suite: string, server: FuzzServer, arb: fc.Arbitrary<C>, send: (c: C) => Promise<Outcome>,
  opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }): Promise<SuiteResult> {
  const t0 = performance.now();
  const failures: string[] = [];
  const buckets = new Map<string, number>();
  let cases = 0;
  let rejected = 0;
  let reads = 0;
  let baseline: string | undefined;
  const one = async (c: C): Promise<string[]> => {
    cases++;
    baseline ??= hashOf(await server.hashKV());
    const o = await send(c);
    buckets.set(o.bucket, (buckets.get(o.bucket) ?? 0) + 1);
    const problems = [...o.problems];
    for (const line of server.takeErrors()) problems.push(`server logged an error: ${line.slice(0, 600)}`);
    if (o.mayWrite) baseline = undefined;
    else {
      if (o.rejected) rejected++;
      else reads++;
      const after = hashOf(await server.hashKV());
      if (after !== baseline) problems.push(`store changed by a ${o.rejected ? 'rejected' : 'read-only'} request: ${baseline} -> ${after}`);
      baseline = after;
    }
    return problems;
  };
  const describe = (c: C): string => JSON.stringify(c, (_k, v: unknown) =>
    (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v)).slice(0, 2000);
  if (opts.mode === 'assert') {
    await fc.assert(fc.asyncProperty(arb, async (c) => {
      const problems = await one(c);
      if (problems.length > 0) throw new Error(problems.join('\n'));
    }), { numRuns: opts.numRuns, seed: opts.seed, endOnFailure: false, interruptAfterTimeLimit: 120_000 }).catch((e: unknown) => {
      failures.push(e instanceof Error ? e.message : String(e));
    });
  } else {
    for (const c of fc.sample(arb, { numRuns: opts.numRuns, seed: opts.seed })) {
      const problems = await one(c);
      if (problems.length > 0) failures.push(`${describe(c)}\n  ${problems.join('\n  ')}`);
    }
  }
  return { suite, cases, rejected, reads, failures, buckets, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// shared generators

const junkStrings = ['', ' ', '\0', '%', '%zz', '%00', '%2F', '..', '.', '_', '\u00e9', '\u{1F600}', 'null', 'true', '-1', '1e400',
  'NaN', '0x10', '18446744073709551616', '-9223372036854775809', '!!!', '====', 'a'.repeat(300)];

const textArb: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...junkStrings), weight: 3 },
  { arbitrary: fc.string({ maxLength: 12 }), weight: 3 },
  { arbitrary: fc.fullUnicodeString({ maxLength: 8 }), weight: 2 },
  { arbitrary: fc.integer().map(String), weight: 2 },
  { arbitrary: fc.bigInt(-(1n << 70n), 1n << 70n).map(String), weight: 1 },
);

/**
 * TTLs that cannot expire during a run (or are refused): a key or lease that expires between two
 * requests would change the store under an unrelated rejected request.
 */
const ttlStrings = ['1000000', '86400000', '9000000000', '9000000001', '18446744073709551615', '18446744073709551616', 'abc', '1.5', ' 5', '-', '+7'];

/** Go's strconv.ParseBool true spellings: `wait`/`stream` set to one of these open a long poll. */
const GO_TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);

// ---------------------------------------------------------------------------------------------
// v2 keys API

const V2_PARAMS = ['value', 'ttl', 'prevValue', 'prevIndex', 'prevExist', 'dir', 'recursive', 'sorted', 'wait', 'waitIndex',
  'quorum', 'stream', 'refresh', 'noValueOnSuccess'] as const;

const boolish = fc.constantFrom('true', 'false', '1', '0', 't', 'F', 'TRUE', 'yes', '', 'truee', '2');

function v2ValueArb(name: string): fc.Arbitrary<string> {
  switch (name) {
    case 'ttl': return fc.oneof(fc.constantFrom(...ttlStrings), fc.constantFrom('', '-1', '0x1', '1e3'));
    case 'prevIndex':
    case 'waitIndex': return fc.oneof(fc.nat({ max: 50 }).map(String), textArb);
    // No long polls: a wait that opens would hold the request until some later write.
    case 'wait':
    case 'stream': return fc.oneof(boolish, textArb).filter((v) => !GO_TRUE.has(v));
    case 'value':
    case 'prevValue': return fc.oneof(textArb, fc.string({ minLength: 2000, maxLength: 5000 }));
    default: return fc.oneof({ arbitrary: boolish, weight: 3 }, { arbitrary: textArb, weight: 1 });
  }
}

/** One path segment as it goes on the wire (already escaped where a raw char would break HTTP). */
const v2SegmentArb: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom('a', 'b', 'dir', 'x y', '.', '..', '_hidden', '', '%2F', '%2f..%2F', '%zz', '%', '%00', '%E2%82%AC', '%C3', '+', '~', ':', '@', "'", '*', '%2e%2e'), weight: 5 },
  { arbitrary: fc.fullUnicodeString({ maxLength: 6 }).map(encodeURIComponent), weight: 2 },
  { arbitrary: fc.stringOf(fc.constantFrom('a', 'b', '.', '_', '-', '%', '2', 'F')).map((s) => s), weight: 2 },
  { arbitrary: fc.integer({ min: 200, max: 3000 }).map((n) => 'k'.repeat(n)), weight: 1 },
);

export interface V2Case {
  method: string;
  path: string;
  query: string;
  body: string | undefined;
  contentType: string | undefined;
}

function encodePairs(pairs: readonly (readonly [string, string])[], rawJunk: string): string {
  const enc = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (rawJunk !== '') enc.push(rawJunk);
  return enc.join('&');
}

const paramPairs = fc.array(
  fc.oneof(
    { arbitrary: fc.constantFrom(...V2_PARAMS).chain((n) => v2ValueArb(n).map((v) => [n, v] as const)), weight: 6 },
    { arbitrary: fc.tuple(textArb, textArb).map(([k, v]) => [k, v] as const), weight: 1 },
  ),
  { maxLength: 6 },
);

const rawQueryJunk = fc.oneof({ arbitrary: fc.constant(''), weight: 6 }, { arbitrary: fc.constantFrom('%zz=1', 'a;b=c', '=', '&&', 'value', 'ttl=%', '%E2=1', 'value=a+b%20c'), weight: 1 });

export const v2CaseArb: fc.Arbitrary<V2Case> = fc.record({
  method: fc.oneof({ arbitrary: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'HEAD'), weight: 10 }, { arbitrary: fc.constantFrom('PATCH', 'OPTIONS', 'FOO'), weight: 1 }),
  prefix: fc.oneof({ arbitrary: fc.constant('/v2/keys'), weight: 12 }, { arbitrary: fc.constantFrom('/v2/key', '/v2', '/v2/keys/../keys', '//v2/keys', '/v2/machines', '/v2/stats/self', '/version'), weight: 1 }),
  segments: fc.array(v2SegmentArb, { maxLength: 4 }),
  trailingSlash: fc.boolean(),
  query: paramPairs,
  queryJunk: rawQueryJunk,
  form: paramPairs,
  formJunk: rawQueryJunk,
  contentType: fc.constantFrom(undefined, 'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'application/x-www-form-urlencoded; charset=utf-8'),
}).map((r) => {
  const path = r.prefix + (r.segments.length > 0 ? '/' + r.segments.join('/') : '') + (r.trailingSlash ? '/' : '');
  const query = encodePairs(r.query, r.queryJunk);
  const body = r.method === 'GET' || r.method === 'HEAD' ? undefined : encodePairs(r.form, r.formJunk);
  return { method: r.method, path, query, body, contentType: body === undefined ? undefined : r.contentType };
});

/** Plain-text answers etcd's mux gives (not the keys handler): bad escapes, wrong methods, unknown paths. */
const PLAIN_ANSWERS = new Set(['400 Bad Request', '431 Request Header Fields Too Large', 'Method Not Allowed\n', '404 page not found\n', '404 page not found', 'Not Found']);

function checkV2ErrorShape(text: string): string | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return `not JSON: ${text.slice(0, 200)}`;
  }
  if (typeof j !== 'object' || j === null) return `not an object: ${text.slice(0, 200)}`;
  const o = j as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'errorCode,index,message' && keys !== 'cause,errorCode,index,message') return `fields ${keys}: ${text.slice(0, 200)}`;
  if (typeof o.errorCode !== 'number' || typeof o.message !== 'string' || typeof o.index !== 'number') return `types: ${text.slice(0, 200)}`;
  if ('cause' in o && typeof o.cause !== 'string') return `cause type: ${text.slice(0, 200)}`;
  return undefined;
}

async function sendV2(server: FuzzServer, c: V2Case): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  const a = await server.http(c.method, c.query === '' ? c.path : `${c.path}?${c.query}`, c.body, headers);
  const problems: string[] = [];
  if (a.timedOut) problems.push(`no answer within ${CALL_TIMEOUT_MS} ms`);
  if (a.status >= 500) problems.push(`HTTP ${a.status}: ${a.body.slice(0, 300)}`);
  let bucket = `${a.status}`;
  if (a.status >= 400 && c.method !== 'HEAD' && !PLAIN_ANSWERS.has(a.body)) {
    if (c.path.startsWith('/v2/keys')) {
      const bad = checkV2ErrorShape(a.body);
      if (bad !== undefined) problems.push(`v2 error shape: ${bad}`);
      else bucket += ` errorCode ${(JSON.parse(a.body) as { errorCode: number }).errorCode}`;
    }
  }
  const write = c.method === 'PUT' || c.method === 'POST' || c.method === 'DELETE';
  const rejected = a.status >= 300 || a.timedOut;
  return { problems, rejected, mayWrite: write && !rejected, bucket };
}

export function runV2Fuzz(server: FuzzServer, opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }): Promise<SuiteResult> {
  return runSuite('v2', server, v2CaseArb, (c) => sendV2(server, c), opts);
}

// ---------------------------------------------------------------------------------------------
// protobuf reflection: random but valid messages, and JSON shaped like them

function protoRoot(): protobuf.Root {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'proto', 'etcdserverpb', 'rpc.proto'))) {
    if (dirname(dir) === dir) throw new Error('proto/ not found');
    dir = dirname(dir);
  }
  const protoDir = join(dir, 'proto');
  const root = new protobuf.Root();
  root.resolvePath = (_o, target) => (target.startsWith(protoDir) ? target : join(protoDir, target));
  root.loadSync(['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'].map((f) => join(protoDir, f)), { keepCase: true });
  root.resolveAll();
  return root;
}

const root = protoRoot();

const INT64_EDGES = [0n, 1n, -1n, 2n, 1000n, (1n << 31n) - 1n, 1n << 32n, (1n << 53n) + 1n, (1n << 63n) - 1n, -(1n << 63n)];
const UINT64_EDGES = [0n, 1n, 2n, 1000n, (1n << 53n) + 1n, (1n << 63n), (1n << 64n) - 1n];

/** A field's value as protobufjs' fromObject takes it (int64 as decimal strings, bytes as Uint8Array). */
function fieldValueArb(f: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  if (/^ttl$/i.test(f.name)) return fc.constantFrom('1000000', '86400000', '9000000000', '9000000001', '9223372036854775807', '-9223372036854775808');
  switch (f.type) {
    case 'int64': case 'sint64': case 'sfixed64':
      return fc.oneof(fc.constantFrom(...INT64_EDGES), fc.bigInt(-(1n << 63n), (1n << 63n) - 1n), fc.bigInt(0n, 100n)).map(String);
    case 'uint64': case 'fixed64':
      return fc.oneof(fc.constantFrom(...UINT64_EDGES), fc.bigInt(0n, (1n << 64n) - 1n), fc.bigInt(0n, 100n)).map(String);
    case 'int32': case 'sint32': case 'sfixed32': return fc.oneof(fc.integer(), fc.integer({ min: -2, max: 10 }));
    case 'uint32': case 'fixed32': return fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.nat({ max: 10 }));
    case 'bool': return fc.boolean();
    case 'double': case 'float': return fc.double();
    case 'string': return textArb;
    case 'bytes': return fc.oneof(
      { arbitrary: fc.constantFrom('', 'a', 'b', 'k', '\0', 'foo/', 'foo0', '\xff').map((s) => Buffer.from(s, 'latin1')), weight: 4 },
      { arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 3 },
      { arbitrary: fc.integer({ min: 1000, max: 4000 }).map((n) => Buffer.alloc(n, 0x61)), weight: 1 },
    );
    default: {
      const t = f.resolvedType;
      if (t instanceof protobuf.Enum) return fc.oneof(fc.constantFrom(...Object.values(t.values)), fc.integer({ min: -1, max: 12 }));
      if (t instanceof protobuf.Type) return depth <= 0 ? fc.constant({}) : messageObjectArb(t, depth - 1);
      throw new Error(`field type ${f.type}`);
    }
  }
}

const messageArbs = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

/** Random objects for protobufjs' Type.fromObject: any subset of the fields, repeated ones short. */
export function messageObjectArb(t: protobuf.Type, depth = 2): fc.Arbitrary<Record<string, unknown>> {
  const key = `${t.fullName}/${depth}`;
  const known = messageArbs.get(key);
  if (known !== undefined) return known;
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of t.fieldsArray) {
    const v = fieldValueArb(f, depth);
    model[f.name] = f.repeated ? fc.array(v, { maxLength: depth > 0 ? 3 : 1 }) : v;
  }
  const arb = fc.record(model, { requiredKeys: [] });
  messageArbs.set(key, arb);
  return arb;
}

export function encodeMessage(t: protobuf.Type, obj: Record<string, unknown>): Uint8Array {
  return t.encode(t.fromObject(obj)).finish();
}

const junkJsonArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.double(), fc.integer(), textArb,
  fc.constantFrom('!!notbase64', '====', 'YQ', 'YQ=', 'YQ===', 'a b', '-1', '1e400', '18446744073709551616', '9223372036854775808'),
  fc.constantFrom(1e30, -1e30, 2 ** 64, -0, 1.5, Number.MAX_SAFE_INTEGER + 2),
  fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);

/** A protobuf object rendered as the gateway's JSON (bytes as base64, int64 as strings or numbers), with junk mixed in. */
function toGatewayJson(t: protobuf.Type, obj: Record<string, unknown>, junk: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  const entries: fc.Arbitrary<[string, unknown]>[] = [];
  for (const [name, v] of Object.entries(obj)) {
    const f = t.fields[name]!;
    const nameArb = fc.constantFrom(name, name.replace(/_(.)/g, (_m, c: string) => c.toUpperCase()));
    const conv = (x: unknown): fc.Arbitrary<unknown> => {
      if (x instanceof Uint8Array) return fc.constant(Buffer.from(x).toString('base64'));
      if (typeof x === 'string' && /^-?\d+$/.test(x) && f.type !== 'string') return fc.constantFrom(x, Number(x));
      if (f.resolvedType instanceof protobuf.Enum && typeof x === 'number') {
        const names = Object.entries(f.resolvedType.values).filter(([, n]) => n === x).map(([k]) => k);
        return fc.constantFrom(x, ...names);
      }
      if (f.resolvedType instanceof protobuf.Type && typeof x === 'object' && x !== null) return toGatewayJson(f.resolvedType, x as Record<string, unknown>, junk);
      return fc.constant(x);
    };
    const value = Array.isArray(v) ? fc.tuple(...v.map(conv)) : conv(v);
    entries.push(fc.tuple(nameArb, fc.oneof({ arbitrary: value, weight: 8 }, { arbitrary: junk, weight: 1 })));
  }
  return fc.tuple(fc.tuple(...entries), fc.option(fc.tuple(fc.string({ maxLength: 6 }), junk), { freq: 8 })).map(([pairs, extra]) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of pairs) o[k] = v;
    if (extra !== null) o[extra[0]] = extra[1];
    return o;
  });
}

function requestType(fullMethod: string): protobuf.Type {
  const m = root.lookup(fullMethod);
  if (!(m instanceof protobuf.Method) || m.resolvedRequestType === null) throw new Error(`no rpc ${fullMethod}`);
  return m.resolvedRequestType;
}

// ---------------------------------------------------------------------------------------------
// v3 JSON gateway

/**
 * Left out: MemberAdd/MemberPromote (a second voter in a one-member cluster stops every write: by
 * design, not a bug) and Lock/Campaign (they block until the lock or leadership frees up).
 */
const EXCLUDED_METHODS = new Set(['etcdserverpb.Cluster.MemberAdd', 'etcdserverpb.Cluster.MemberPromote', 'v3lockpb.Lock.Lock', 'v3electionpb.Election.Campaign']);

/** Never change the keyspace even when accepted (HashKV compared after each). */
const READ_ONLY_METHODS = new Set([
  'etcdserverpb.KV.Range', 'etcdserverpb.Watch.Watch', 'etcdserverpb.Lease.LeaseTimeToLive', 'etcdserverpb.Lease.LeaseLeases',
  'etcdserverpb.Lease.LeaseKeepAlive', 'etcdserverpb.Cluster.MemberList', 'etcdserverpb.Maintenance.Status', 'etcdserverpb.Maintenance.Hash',
  'etcdserverpb.Maintenance.HashKV', 'etcdserverpb.Maintenance.Snapshot', 'etcdserverpb.Maintenance.Defragment',
  'etcdserverpb.Auth.UserGet', 'etcdserverpb.Auth.UserList', 'etcdserverpb.Auth.RoleGet', 'etcdserverpb.Auth.RoleList',
  'etcdserverpb.Auth.Authenticate', 'v3electionpb.Election.Leader', 'v3electionpb.Election.Observe',
]);

/** Streams stay open while the client does: answered, then cut by our timeout. */
const STREAM_METHODS = new Set(['etcdserverpb.Watch.Watch', 'etcdserverpb.Lease.LeaseKeepAlive', 'etcdserverpb.Maintenance.Snapshot', 'v3electionpb.Election.Observe']);

/** UNKNOWN answers (HTTP 500) etcd itself gives, by message. */
const ETCD_UNKNOWN_MESSAGES = new Set(['election: no leader', 'election: not leader', '"leader" field must be provided',
  'auth: authentication failed, password was given for no password user']);

export interface GatewayCase {
  method: string;
  path: string;
  body: string;
  route: string;
}

const gatewayRouteList = gatewayRoutes.filter((r) => !EXCLUDED_METHODS.has(r.method));

function nest(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

const rawBodyArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', '{', '}', '[]', 'null', '1', '"x"', '{"key":', '{"key":"YQ=="', '{"key":"YQ=="}}', '{"key":1e400}', '{"revision":1e30}',
    '{"key":"YQ==","key":"Yg=="}', '\u00ff\u00fe', '{"key":"\\ud800"}', '[[[[[[[[[[', nest(200), nest(5000), '{"a":' + '['.repeat(3000)),
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 30 }),
  fc.fullUnicodeString({ maxLength: 10 }),
);

export const gatewayCaseArb: fc.Arbitrary<GatewayCase> = fc.constantFrom(...gatewayRouteList).chain((route) => {
  const t = requestType(route.method);
  const shaped = messageObjectArb(t).chain((o) => toGatewayJson(t, o, junkJsonArb)).map((o) => JSON.stringify(o));
  return fc.record({
    method: fc.oneof({ arbitrary: fc.constant('POST'), weight: 20 }, { arbitrary: fc.constantFrom('GET', 'PUT', 'OPTIONS'), weight: 1 }),
    path: fc.oneof({ arbitrary: fc.constant(route.path), weight: 10 }, { arbitrary: fc.constant(route.path.replace('/v3/', '/v3beta/')), weight: 2 },
      { arbitrary: fc.constantFrom(route.path + '/', route.path + 'x', '/v3alpha/' + route.path.slice(4), route.path.toUpperCase()), weight: 1 }),
    body: fc.oneof({ arbitrary: shaped, weight: 4 }, { arbitrary: rawBodyArb, weight: 1 }),
    route: fc.constant(route.method),
  });
});

/** Texts that come from JS itself, never from etcd: an unexpected exception leaked to the client. */
const JS_ERROR = /Maximum call stack|Cannot read prop|Cannot convert|is not a function|is not defined|is not iterable|undefined|TypeError|RangeError|ReferenceError|Invalid (typed )?array length|\.js:\d+/;

/**
 * When a 500 (UNKNOWN) is etcd's own answer: Lock and Election pass every failure on as UNKNOWN
 * with etcd's text, and a client stream (watch, keepalive) whose first value does not decode is
 * refused with UNKNOWN and Go's decoder text.
 */
function unknownIsEtcds(route: string, message: string): boolean {
  if (ETCD_UNKNOWN_MESSAGES.has(message)) return true;
  if (JS_ERROR.test(message)) return false;
  if (route.startsWith('v3lockpb.') || route.startsWith('v3electionpb.')) return /^(etcdserver: |election: |lock: |mvcc: )/.test(message);
  if (route === 'etcdserverpb.Watch.Watch' || route === 'etcdserverpb.Lease.LeaseKeepAlive') return /^(invalid character |json: |unexpected EOF|unexpected end of JSON input|exceeded max depth|illegal base64|bad Timestamp|unknown value |unknown field )/.test(message);
  return false;
}

function checkGatewayErrorShape(text: string, status: number, route: string): { problem?: string; code?: number } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return { problem: `not JSON: ${text.slice(0, 200)}` };
  }
  const o = j as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Object.keys(o).sort().join(',') !== 'code,error,message') return { problem: `shape: ${text.slice(0, 300)}` };
  if (typeof o.code !== 'number' || typeof o.message !== 'string' || o.error !== o.message) return { problem: `types: ${text.slice(0, 300)}` };
  if (o.code === 13) return { problem: `INTERNAL: ${text.slice(0, 300)}` };
  if (status === 500 && !(o.code === 2 && unknownIsEtcds(route, o.message))) return { problem: `HTTP 500: ${text.slice(0, 300)}` };
  if (/\n\s+at /.test(o.message) || JS_ERROR.test(o.message)) return { problem: `JS error text in message: ${o.message.slice(0, 300)}` };
  return { code: o.code };
}

async function sendGateway(server: FuzzServer, c: GatewayCase): Promise<Outcome> {
  const stream = STREAM_METHODS.has(c.route);
  const a = await server.http(c.method, c.path, c.body, { 'content-type': 'application/json' }, stream ? 100 : CALL_TIMEOUT_MS);
  const problems: string[] = [];
  if (a.timedOut && !stream) problems.push(`no answer within ${CALL_TIMEOUT_MS} ms`);
  let bucket = `${c.route.split('.').pop()} ${a.status}`;
  const known = gatewayRoutes.some((r) => r.path === c.path || r.path.replace('/v3/', '/v3beta/') === c.path);
  if (a.status >= 400 && !PLAIN_ANSWERS.has(a.body)) {
    if (c.method === 'POST' && known && !(stream && a.status === 200)) {
      const r = checkGatewayErrorShape(a.body, a.status, c.route);
      if (r.problem !== undefined) problems.push(r.problem);
      else bucket += ` code ${r.code}`;
    } else if (a.status >= 500) problems.push(`HTTP ${a.status}: ${a.body.slice(0, 300)}`);
  }
  if (stream && /"http_code":500|"grpc_code":13/.test(a.body)) problems.push(`stream error: ${a.body.slice(0, 300)}`);
  const rejected = a.status >= 300 || (a.timedOut && !stream);
  const mayWrite = !READ_ONLY_METHODS.has(c.route) && !rejected && c.method === 'POST';
  return { problems, rejected, mayWrite, bucket };
}

export function runGatewayFuzz(server: FuzzServer, opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }): Promise<SuiteResult> {
  return runSuite('gateway', server, gatewayCaseArb, (c) => sendGateway(server, c), opts);
}

// ---------------------------------------------------------------------------------------------
// gRPC (raw bytes through @grpc/grpc-js, so invalid protobuf reaches the server too)

export interface GrpcCase {
  method: string;
  path: string;
  bytes: Uint8Array;
}

function unaryMethods(): { fullName: string; path: string; type: protobuf.Type }[] {
  const out: { fullName: string; path: string; type: protobuf.Type }[] = [];
  for (const svc of ['etcdserverpb.KV', 'etcdserverpb.Lease', 'etcdserverpb.Cluster', 'etcdserverpb.Maintenance', 'etcdserverpb.Auth', 'v3lockpb.Lock', 'v3electionpb.Election']) {
    const s = root.lookupService(svc);
    for (const m of s.methodsArray) {
      const fullName = `${svc}.${m.name}`;
      if (m.requestStream === true || m.responseStream === true || EXCLUDED_METHODS.has(fullName)) continue;
      out.push({ fullName, path: `/${svc}/${m.name}`, type: m.resolvedRequestType! });
    }
  }
  return out;
}

const grpcMethodList = unaryMethods();

export const grpcCaseArb: fc.Arbitrary<GrpcCase> = fc.constantFrom(...grpcMethodList).chain((m) => {
  const valid = messageObjectArb(m.type).map((o) => encodeMessage(m.type, o));
  const mutated = fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('truncate', 'flip', 'append')).map(([b, at, byte, how]) => {
    const buf = Buffer.from(b);
    if (buf.length === 0) return Buffer.from([byte]);
    const i = at % buf.length;
    if (how === 'truncate') return buf.subarray(0, i);
    if (how === 'flip') { buf[i] = byte; return buf; }
    return Buffer.concat([buf, Buffer.from([byte, at & 0xff, 0x01])]);
  });
  return fc.record({
    method: fc.constant(m.fullName),
    path: fc.constant(m.path),
    bytes: fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: mutated, weight: 3 }, { arbitrary: fc.uint8Array({ maxLength: 64 }), weight: 2 }),
  });
});

async function sendGrpc(server: FuzzServer, c: GrpcCase): Promise<Outcome> {
  const a = await server.grpcUnary(c.path, c.bytes);
  const problems: string[] = [];
  let bucket = `${c.method.split('.').pop()} OK`;
  if (!a.ok) {
    bucket = `${c.method.split('.').pop()} ${grpc.status[a.code]}`;
    if (a.code === grpc.status.DEADLINE_EXCEEDED) problems.push(`no answer within ${CALL_TIMEOUT_MS} ms`);
    // A request that is not valid protobuf: INTERNAL, as grpc-go answers ("grpc: error unmarshalling
    // request: ..." there, grpc-js's fixed text here: same code, no detail leaked).
    if (a.code === grpc.status.INTERNAL && a.details !== 'Error deserializing request') problems.push(`INTERNAL: ${a.details}`);
    if (a.code === grpc.status.UNKNOWN && !unknownIsEtcds(c.method, a.details)) problems.push(`UNKNOWN: ${a.details}`);
    if (/\n\s+at /.test(a.details) || JS_ERROR.test(a.details)) problems.push(`JS error text in details: ${a.details.slice(0, 300)}`);
  }
  return { problems, rejected: !a.ok, mayWrite: a.ok && !READ_ONLY_METHODS.has(c.method), bucket };
}

export interface GrpcStreamCase {
  method: string;
  path: string;
  messages: Uint8Array[];
}

/** A client-stream message: valid, mutated or random bytes (as the unary cases). */
function streamMessageArb(t: protobuf.Type): fc.Arbitrary<Uint8Array> {
  const valid = messageObjectArb(t).map((o) => encodeMessage(t, o));
  return fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: fc.uint8Array({ maxLength: 48 }), weight: 1 },
    { arbitrary: fc.tuple(valid, fc.nat()).map(([b, at]) => b.subarray(0, b.length === 0 ? 0 : at % b.length)), weight: 1 });
}

/** Watch and LeaseKeepAlive streams, one to four messages each (both only read the keyspace). */
export const grpcStreamCaseArb: fc.Arbitrary<GrpcStreamCase> = fc.constantFrom(
  { method: 'etcdserverpb.Watch.Watch', path: '/etcdserverpb.Watch/Watch', type: requestType('etcdserverpb.Watch.Watch') },
  { method: 'etcdserverpb.Lease.LeaseKeepAlive', path: '/etcdserverpb.Lease/LeaseKeepAlive', type: requestType('etcdserverpb.Lease.LeaseKeepAlive') },
).chain((m) => fc.record({
  method: fc.constant(m.method),
  path: fc.constant(m.path),
  messages: fc.array(streamMessageArb(m.type), { minLength: 1, maxLength: 4 }),
}));

/** How long a fuzzed stream may run before the client cancels it (errors come at once). */
const STREAM_WAIT_MS = 30;

async function sendGrpcStream(server: FuzzServer, c: GrpcStreamCase): Promise<Outcome> {
  const a = await server.grpcBidi(c.path, c.messages, STREAM_WAIT_MS);
  const problems: string[] = [];
  const name = c.method.split('.').pop()!;
  let bucket = `${name} ${a.ok ? 'open' : grpc.status[a.code]}${a.responses > 0 ? ' +responses' : ''}`;
  if (!a.ok) {
    if (a.code === grpc.status.DEADLINE_EXCEEDED) problems.push('stream never ended');
    if (a.code === grpc.status.INTERNAL && a.details !== 'Error deserializing request') problems.push(`INTERNAL: ${a.details}`);
    if (a.code === grpc.status.UNKNOWN && !unknownIsEtcds(c.method, a.details)) problems.push(`UNKNOWN: ${a.details}`);
    if (/\n\s+at /.test(a.details) || JS_ERROR.test(a.details)) problems.push(`JS error text in details: ${a.details.slice(0, 300)}`);
    bucket = `${name} ${grpc.status[a.code]}`;
  }
  return { problems, rejected: !a.ok, mayWrite: false, bucket };
}

export function runGrpcStreamFuzz(server: FuzzServer, opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }): Promise<SuiteResult> {
  return runSuite('grpc-streams', server, grpcStreamCaseArb, (c) => sendGrpcStream(server, c), opts);
}

export function runGrpcFuzz(server: FuzzServer, opts: { numRuns: number; seed: number; mode: 'assert' | 'count' }): Promise<SuiteResult> {
  return runSuite('grpc', server, grpcCaseArb, (c) => sendGrpc(server, c), opts);
}

/** One line per suite: the numbers the issue asks to print. */
export function formatResult(r: SuiteResult): string {
  const top = [...r.buckets.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, n]) => `${k}: ${n}`).join(', ');
  return `${r.suite}: ${r.cases} cases (${r.rejected} rejected and ${r.reads} reads checked against HashKV), ${r.failures.length} failures, ${r.seconds.toFixed(1)} s; top answers: ${top}`;
}
