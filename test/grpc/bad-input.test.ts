// Bad input over gRPC gets etcd's status code and exact message, and never takes the server down.
// Every case runs, in the same order from a fresh store, against our server and (when installed)
// against real etcd 3.4: each case's outcome must be the expected one on both, and equal on both
// (code only where the message text comes from the gRPC library, not from etcd).
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import {
  CompactionRequest, Compare, Compare_CompareResult, Compare_CompareTarget, DeleteRangeRequest, HashKVRequest, KVClient,
  LeaseClient, LeaseGrantRequest, LeaseRevokeRequest, MaintenanceClient, PutRequest, RangeRequest, RangeRequest_SortOrder, RequestOp, TxnRequest,
  WatchClient, WatchRequest,
  type CompactionResponse, type DeleteRangeResponse, type HashKVResponse, type LeaseGrantResponse, type LeaseRevokeResponse,
  type PutResponse, type RangeResponse, type TxnResponse, type WatchResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import { hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

const CALL_TIMEOUT_MS = 15_000;
const { status } = grpc;

type Cb<T> = (err: grpc.ServiceError | null, res: T) => void;
type Method<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: Cb<Res>) => unknown;
function call<Req, Res>(fn: Method<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res))));
}

const b = (s: string) => Buffer.from(s);

class Conn {
  readonly kv: KVClient;
  readonly lease: LeaseClient;
  readonly watchClient: WatchClient;
  readonly maint: MaintenanceClient;
  readonly raw: grpc.Client;

  constructor(readonly endpoint: string) {
    const creds = grpc.credentials.createInsecure();
    // Large enough for the 3 MB put to be sent: the server must be the one refusing it.
    const opts = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 };
    this.kv = new KVClient(endpoint, creds, opts);
    this.lease = new LeaseClient(endpoint, creds, opts);
    this.watchClient = new WatchClient(endpoint, creds, opts);
    this.maint = new MaintenanceClient(endpoint, creds, opts);
    this.raw = new grpc.Client(endpoint, creds, opts);
  }

  range(r: RangeRequest): Promise<RangeResponse> { return call(this.kv.range.bind(this.kv), r); }
  rangeWithMetadata(r: RangeRequest, md: Record<string, string>): Promise<RangeResponse> {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(md)) m.set(k, v);
    return new Promise((resolve, reject) =>
      this.kv.range(r, m, { deadline: Date.now() + CALL_TIMEOUT_MS }, (e, res) => (e ? reject(e) : resolve(res))));
  }
  put(r: PutRequest): Promise<PutResponse> { return call(this.kv.put.bind(this.kv), r); }
  del(r: DeleteRangeRequest): Promise<DeleteRangeResponse> { return call(this.kv.deleteRange.bind(this.kv), r); }
  txn(r: TxnRequest): Promise<TxnResponse> { return call(this.kv.txn.bind(this.kv), r); }
  compact(r: CompactionRequest): Promise<CompactionResponse> { return call(this.kv.compact.bind(this.kv), r); }
  grant(r: LeaseGrantRequest): Promise<LeaseGrantResponse> { return call(this.lease.leaseGrant.bind(this.lease), r); }
  revoke(r: LeaseRevokeRequest): Promise<LeaseRevokeResponse> { return call(this.lease.leaseRevoke.bind(this.lease), r); }
  hashKV(r: HashKVRequest): Promise<HashKVResponse> { return call(this.maint.hashKv.bind(this.maint), r); }

  /** A unary call whose request bytes are exactly `bytes` (not necessarily valid protobuf). */
  rawUnary(path: string, bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest<null, Buffer>(path, () => bytes, (x) => x, null, new grpc.Metadata(),
        { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  /** A Txn whose response is returned undecoded. */
  txnRawResponse(t: TxnRequest): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest<TxnRequest, Buffer>('/etcdserverpb.KV/Txn', (m) => Buffer.from(TxnRequest.encode(m).finish()), (x) => x, t,
        new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  /** Opens a bidi stream, writes raw `messages`, resolves with its end status (or the responses so far on timeout). */
  rawBidi(path: string, messages: Buffer[]): Promise<{ error?: grpc.ServiceError; responses: number }> {
    return new Promise((resolve) => {
      const s = this.raw.makeBidiStreamRequest<Buffer, Buffer>(path, (x) => x, (x) => x, new grpc.Metadata(),
        { deadline: Date.now() + CALL_TIMEOUT_MS });
      let responses = 0;
      s.on('data', () => responses++);
      s.on('error', (error: grpc.ServiceError) => resolve({ error, responses }));
      s.on('end', () => resolve({ responses }));
      for (const m of messages) s.write(m);
    });
  }

  /**
   * Sends watch requests on one stream and collects `n` responses (or what came within `ms`),
   * then cancels the stream.
   */
  watch(reqs: WatchRequest[], n: number, ms = 3000): Promise<WatchResponse[]> {
    return new Promise((resolve, reject) => {
      const s = this.watchClient.watch();
      const got: WatchResponse[] = [];
      const done = (): void => {
        clearTimeout(timer);
        s.removeAllListeners('data');
        s.on('error', () => undefined);
        s.cancel();
        resolve(got);
      };
      const timer = setTimeout(done, ms);
      s.on('data', (r: WatchResponse) => {
        got.push(r);
        if (got.length >= n) done();
      });
      s.on('error', (e: grpc.ServiceError) => {
        clearTimeout(timer);
        if (e.code === status.CANCELLED) resolve(got);
        else reject(e);
      });
      for (const r of reqs) s.write(r);
    });
  }

  close(): void {
    for (const c of [this.kv, this.lease, this.watchClient, this.maint, this.raw]) c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// cases

type Want =
  | { ok: string | RegExp }
  | { code: grpc.status; details: string | RegExp };

interface Case {
  name: string;
  run(c: Conn): Promise<string>;
  want: Want;
  /** 'code': the message text is the gRPC library's own (grpc-js vs grpc-go), compare codes only. */
  differential?: 'full' | 'code' | 'none';
}

type Outcome = { ok: string } | { code: number; details: string };

const err = (code: grpc.status, details: string | RegExp): Want => ({ code, details });
const EMPTY_KEY = err(status.INVALID_ARGUMENT, 'etcdserver: key is not provided');
const TOO_MANY = err(status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request');
const DUPLICATE = err(status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request');
const KEY_NOT_FOUND = err(status.INVALID_ARGUMENT, 'etcdserver: key not found');
const LEASE_NOT_FOUND = err(status.NOT_FOUND, 'etcdserver: requested lease not found');
const COMPACTED = err(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted');
const FUTURE = err(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision');

const rangeOp = (key: string, extra: Partial<RangeRequest> = {}): RequestOp =>
  RequestOp.fromPartial({ request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key: b(key), ...extra }) } });
const putOp = (key: string, value = 'v', extra: Partial<PutRequest> = {}): RequestOp =>
  RequestOp.fromPartial({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b(key), value: b(value), ...extra }) } });
const delOp = (key: string, rangeEnd = ''): RequestOp =>
  RequestOp.fromPartial({ request: { $case: 'requestDeleteRange', value: DeleteRangeRequest.fromPartial({ key: b(key), rangeEnd: b(rangeEnd) }) } });
const txnOp = (t: TxnRequest): RequestOp => RequestOp.fromPartial({ request: { $case: 'requestTxn', value: t } });
const versionCmp = (key: string): Compare =>
  Compare.fromPartial({ key: b(key), target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER, targetUnion: { $case: 'version', value: -1n } });

/** A txn nested `depth` levels deep (one op per level), with a range at the bottom. */
function nestedTxn(depth: number): TxnRequest {
  let t = TxnRequest.fromPartial({ success: [rangeOp('a')] });
  for (let i = 1; i < depth; i++) t = TxnRequest.fromPartial({ success: [txnOp(t)] });
  return t;
}

const summarizeRange = (r: RangeResponse) =>
  `rev ${r.header?.revision} count ${r.count} kvs [${r.kvs.map((kv) => `${kv.key}@${kv.modRevision}`).join(' ')}] more ${r.more}`;

/** A WatchResponse without the member-specific header fields. */
function watchShape(r: WatchResponse): string {
  return JSON.stringify({
    rev: String(r.header?.revision ?? 'none'), watchId: String(r.watchId), created: r.created, canceled: r.canceled,
    compactRevision: String(r.compactRevision), cancelReason: r.cancelReason, events: r.events.length,
  });
}

const MB = 1000 * 1000;
let compactAt = 0n; // set by the compaction setup case (same on both servers: same request sequence)

const cases: Case[] = [
  // --- empty keys
  { name: 'Range with an empty key', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({}))), want: EMPTY_KEY },
  { name: 'Range with an empty key and a range_end', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ rangeEnd: b('z') }))), want: EMPTY_KEY },
  { name: 'Put with an empty key', run: async (c) => String((await c.put(PutRequest.fromPartial({ value: b('v') }))).header?.revision), want: EMPTY_KEY },
  { name: 'DeleteRange with an empty key', run: async (c) => String((await c.del(DeleteRangeRequest.fromPartial({ rangeEnd: b('z') }))).deleted), want: EMPTY_KEY },
  {
    name: 'Txn compare with an empty key',
    run: async (c) => String((await c.txn(TxnRequest.fromPartial({ compare: [versionCmp('')], success: [putOp('a')] }))).succeeded),
    want: EMPTY_KEY,
  },
  { name: 'Txn success put with an empty key', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('')] }))).succeeded), want: EMPTY_KEY },
  { name: 'Txn success range with an empty key', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [rangeOp('')] }))).succeeded), want: EMPTY_KEY },
  { name: 'Txn failure delete with an empty key', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ failure: [delOp('')] }))).succeeded), want: EMPTY_KEY },
  {
    name: 'Txn nested put with an empty key',
    run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [txnOp(TxnRequest.fromPartial({ failure: [putOp('')] }))] }))).succeeded),
    want: EMPTY_KEY,
  },

  // --- data for the following cases: a=1 (rev 2), b=2 (rev 3), c=3 (rev 4)
  {
    name: 'setup: three puts',
    run: async (c) => {
      const revs: string[] = [];
      for (const [k, v] of [['a', '1'], ['b', '2'], ['c', '3']] as const) revs.push(String((await c.put(PutRequest.fromPartial({ key: b(k), value: b(v) }))).header?.revision));
      return revs.join(',');
    },
    want: { ok: '2,3,4' },
  },

  // etcd's compacted revision starts at -1: compacting at 0 on a never-compacted store succeeds.
  { name: 'Compact at revision 0 before any compaction', run: async (c) => String((await c.compact(CompactionRequest.fromPartial({ revision: 0n }))).header?.revision), want: { ok: '4' } },

  // --- inverted ranges: empty results, no error
  { name: 'Range with range_end < key is empty', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('c'), rangeEnd: b('a') }))), want: { ok: 'rev 4 count 0 kvs [] more false' } },
  { name: 'Range with range_end == key is empty', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('b'), rangeEnd: b('b') }))), want: { ok: 'rev 4 count 0 kvs [] more false' } },
  {
    name: 'DeleteRange with range_end < key deletes nothing and keeps the revision',
    run: async (c) => { const r = await c.del(DeleteRangeRequest.fromPartial({ key: b('c'), rangeEnd: b('a') })); return `rev ${r.header?.revision} deleted ${r.deleted}`; },
    want: { ok: 'rev 4 deleted 0' },
  },
  { name: 'Range with a negative revision and limit reads everything at the current revision', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), rangeEnd: b('\0'), revision: -5n, limit: -1n }))), want: { ok: 'rev 4 count 3 kvs [a@2 b@3 c@4] more false' } },

  { name: 'Range with an out-of-range sort_order (7) means no sort', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), rangeEnd: b('z'), sortOrder: 7 as RangeRequest_SortOrder }))), want: { ok: 'rev 4 count 3 kvs [a@2 b@3 c@4] more false' } },

  // --- txn size limits
  { name: 'Txn with 129 compares', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ compare: Array.from({ length: 129 }, () => versionCmp('a')) }))).succeeded), want: TOO_MANY },
  { name: 'Txn with 129 success ops', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: Array.from({ length: 129 }, () => rangeOp('a')) }))).succeeded), want: TOO_MANY },
  { name: 'Txn with 129 failure ops', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ failure: Array.from({ length: 129 }, (_x, i) => putOp(`k${i}`)) }))).succeeded), want: TOO_MANY },
  { name: 'Txn with 128 compares and 128 ops is accepted', run: async (c) => { const r = await c.txn(TxnRequest.fromPartial({ compare: Array.from({ length: 128 }, () => versionCmp('a')), success: Array.from({ length: 128 }, () => rangeOp('a')) })); return `${r.succeeded} ${r.responses.length} rev ${r.header?.revision}`; }, want: { ok: 'true 128 rev 4' } },
  { name: 'Txn of one nested txn with 128 ops (allowance 128 - 1)', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [txnOp(TxnRequest.fromPartial({ success: Array.from({ length: 128 }, () => rangeOp('a')) }))] }))).succeeded), want: TOO_MANY },
  // Deep nesting is legal up to the op allowance (128 - 1 per level). The response is as deep as
  // the request, too deep for ts-proto's decoder on this side: it is taken as raw bytes.
  { name: 'Txn nested 40 levels deep is accepted', run: async (c) => `accepted: ${(await c.txnRawResponse(nestedTxn(40))).length > 0}`, want: { ok: 'accepted: true' } },
  { name: 'Txn nested 60 levels deep is accepted', run: async (c) => `accepted: ${(await c.txnRawResponse(nestedTxn(60))).length > 0}`, want: { ok: 'accepted: true' } },
  { name: 'Txn nested 130 levels deep exceeds the op allowance', run: async (c) => `accepted: ${(await c.txnRawResponse(nestedTxn(130))).length > 0}`, want: TOO_MANY },

  // --- txn op checks
  { name: 'Txn with two puts of one key', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('d', '1'), putOp('d', '2')] }))).succeeded), want: DUPLICATE },
  { name: 'Txn with a put inside a deleted range', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ failure: [delOp('a', 'z'), putOp('d')] }))).succeeded), want: DUPLICATE },
  { name: 'Txn with a nested put duplicating an outer put', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('d'), txnOp(TxnRequest.fromPartial({ success: [putOp('d')] }))] }))).succeeded), want: DUPLICATE },
  { name: 'Txn with a RequestOp with nothing set', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [RequestOp.fromPartial({})] }))).succeeded), want: KEY_NOT_FOUND },
  { name: 'Txn with an empty RequestOp in the failure branch', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [rangeOp('a')], failure: [RequestOp.fromPartial({})] }))).succeeded), want: KEY_NOT_FOUND },

  // --- put flags and leases
  { name: 'Put with ignore_value and a value', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('a'), value: b('x'), ignoreValue: true }))).header?.revision), want: err(status.INVALID_ARGUMENT, 'etcdserver: value is provided') },
  { name: 'Put with ignore_lease and a lease', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('a'), lease: 5n, ignoreLease: true }))).header?.revision), want: err(status.INVALID_ARGUMENT, 'etcdserver: lease is provided') },
  { name: 'Put with ignore_value on a missing key', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('missing'), ignoreValue: true }))).header?.revision), want: KEY_NOT_FOUND },
  { name: 'Txn put with ignore_lease on a missing key', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('missing', '', { ignoreLease: true })] }))).succeeded), want: KEY_NOT_FOUND },
  { name: 'Put with an unknown lease', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('a'), value: b('x'), lease: 123456789n }))).header?.revision), want: LEASE_NOT_FOUND },
  { name: 'Txn put with an unknown lease (nothing applied)', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('e', 'x'), putOp('f', 'x', { lease: 123456789n })] }))).succeeded), want: LEASE_NOT_FOUND },
  { name: 'no half-applied txn: e was not written, revision unchanged', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('e') }))), want: { ok: 'rev 4 count 0 kvs [] more false' } },
  { name: 'LeaseRevoke of an unknown lease', run: async (c) => String((await c.revoke(LeaseRevokeRequest.fromPartial({ ID: 987654321n }))).header?.revision), want: LEASE_NOT_FOUND },
  { name: 'LeaseGrant with TTL 9000000001', run: async (c) => String((await c.grant(LeaseGrantRequest.fromPartial({ TTL: 9_000_000_001n }))).TTL), want: err(status.OUT_OF_RANGE, 'etcdserver: too large lease TTL') },
  {
    name: 'LeaseGrant with TTL 9000000000 (the maximum) is accepted',
    run: async (c) => { const g = await c.grant(LeaseGrantRequest.fromPartial({ ID: 77n, TTL: 9_000_000_000n })); await c.revoke(LeaseRevokeRequest.fromPartial({ ID: 77n })); return `ttl ${g.TTL}`; },
    want: { ok: 'ttl 9000000000' },
  },
  { name: 'LeaseGrant with a negative TTL gets the minimum TTL', run: async (c) => { const g = await c.grant(LeaseGrantRequest.fromPartial({ ID: 78n, TTL: -10n })); return `ttl ${g.TTL}`; }, want: { ok: 'ttl 2' } },
  { name: 'LeaseGrant of a new ID', run: async (c) => `id ${(await c.grant(LeaseGrantRequest.fromPartial({ ID: 4242n, TTL: 60n }))).ID}`, want: { ok: 'id 4242' } },
  { name: 'LeaseGrant with an existing ID', run: async (c) => `id ${(await c.grant(LeaseGrantRequest.fromPartial({ ID: 4242n, TTL: 60n }))).ID}`, want: err(status.FAILED_PRECONDITION, 'etcdserver: lease already exists') },

  // --- request size
  { name: 'Put of a 1.5 MB value (under the request limit)', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(1_500_000, 0x61) }))).header?.revision), want: { ok: '5' } },
  { name: 'Put of a 1.6 MB value', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(1.6 * MB, 0x61) }))).header?.revision), want: err(status.INVALID_ARGUMENT, 'etcdserver: request is too large') },
  { name: 'Txn putting 1.6 MB in total', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('big1', 'x'.repeat(800_000)), putOp('big2', 'y'.repeat(800_000))] }))).succeeded), want: err(status.INVALID_ARGUMENT, 'etcdserver: request is too large') },
  // etcd measures the encoded InternalRaftRequest, whose header carries a ~9-byte request ID:
  // with key "big" and lease 123456789 it accepts values up to 1,572,832 (or 1,572,833) bytes.
  // The size is checked
  // before anything is applied, so an unknown lease (which would fail at apply and leave the
  // store untouched either way) is never looked at.
  { name: 'Put of a 1,572,840-byte value (just over etcd\'s limit for key "big") with an unknown lease', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(1_572_840, 0x62), lease: 123456789n }))).header?.revision), want: err(status.INVALID_ARGUMENT, 'etcdserver: request is too large') },
  { name: 'Put of a 1,572,700-byte value with an unknown lease', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(1_572_700, 0x62), lease: 123456789n }))).header?.revision), want: LEASE_NOT_FOUND },
  { name: 'Put of a 1,572,700-byte value (just under the limit)', run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(1_572_700, 0x61) }))).header?.revision), want: { ok: '6' } },
  // Only proposals are measured: reads with a huge key are answered, a delete is refused.
  { name: 'Range with a 1.6 MB key is answered', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: Buffer.alloc(1.6 * MB, 0x62) }))), want: { ok: 'rev 6 count 0 kvs [] more false' } },
  { name: 'read-only Txn with a 1.6 MB key is answered', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [RequestOp.fromPartial({ request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key: Buffer.alloc(1.6 * MB, 0x62) }) } })] }))).succeeded), want: { ok: 'true' } },
  { name: 'DeleteRange with a 1.6 MB key', run: async (c) => String((await c.del(DeleteRangeRequest.fromPartial({ key: Buffer.alloc(1.6 * MB, 0x62) }))).deleted), want: err(status.INVALID_ARGUMENT, 'etcdserver: request is too large') },
  {
    name: 'Put of a 3 MB value (over the gRPC receive limit)',
    run: async (c) => String((await c.put(PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(3 * MB, 0x61) }))).header?.revision),
    want: err(status.RESOURCE_EXHAUSTED, /larger than max/),
    differential: 'code',
  },
  { name: 'after the oversized requests: big holds the last accepted value, revision 6', run: async (c) => { const r = await c.range(RangeRequest.fromPartial({ key: b('big') })); return `rev ${r.header?.revision} len ${r.kvs[0]?.value.length}`; }, want: { ok: 'rev 6 len 1572700' } },
  {
    name: 'setup: delete big',
    run: async (c) => String((await c.del(DeleteRangeRequest.fromPartial({ key: b('big') }))).header?.revision),
    want: { ok: '7' },
  },

  // --- auth is disabled: etcd refuses any request that carries a token anyway
  {
    name: 'Range with a token in the metadata while auth is disabled',
    run: async (c) => summarizeRange(await c.rangeWithMetadata(RangeRequest.fromPartial({ key: b('a') }), { token: 'bogus.1' })),
    want: err(status.UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  },

  // --- compaction: revision 8 rewrites a, then compact at 8 (a: 1@2 ... 8@8)
  {
    name: 'setup: one more put, compact at 8',
    run: async (c) => {
      await c.put(PutRequest.fromPartial({ key: b('a'), value: b('8') }));
      await c.put(PutRequest.fromPartial({ key: b('a'), value: b('9') }));
      const r = await c.compact(CompactionRequest.fromPartial({ revision: 8n, physical: true }));
      compactAt = 8n;
      return `rev ${r.header?.revision}`;
    },
    want: { ok: 'rev 9' },
  },
  { name: 'Range below the compacted revision', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), revision: compactAt - 1n }))), want: COMPACTED },
  { name: 'Range far below the compacted revision', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), rangeEnd: b('\0'), revision: 1n }))), want: COMPACTED },
  { name: 'Range at the compacted revision is readable', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), revision: compactAt }))), want: { ok: 'rev 9 count 1 kvs [a@8] more false' } },
  { name: 'Compact at the compacted revision', run: async (c) => String((await c.compact(CompactionRequest.fromPartial({ revision: compactAt }))).header?.revision), want: COMPACTED },
  { name: 'Compact below the compacted revision', run: async (c) => String((await c.compact(CompactionRequest.fromPartial({ revision: 3n }))).header?.revision), want: COMPACTED },
  { name: 'Compact at revision 0 after a compaction', run: async (c) => String((await c.compact(CompactionRequest.fromPartial({ revision: 0n }))).header?.revision), want: COMPACTED },
  { name: 'Range at a future revision', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), revision: 10n }))), want: FUTURE },
  { name: 'Range at revision 2^63-1', run: async (c) => summarizeRange(await c.range(RangeRequest.fromPartial({ key: b('a'), revision: 2n ** 63n - 1n }))), want: FUTURE },
  { name: 'Compact at a future revision', run: async (c) => String((await c.compact(CompactionRequest.fromPartial({ revision: 100n }))).header?.revision), want: FUTURE },
  { name: 'Txn range below the compacted revision', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [rangeOp('a', { revision: 2n })] }))).succeeded), want: COMPACTED },
  { name: 'Txn range at a future revision', run: async (c) => String((await c.txn(TxnRequest.fromPartial({ success: [putOp('g'), rangeOp('a', { revision: 50n })] }))).succeeded), want: FUTURE },
  { name: 'HashKV below the compacted revision', run: async (c) => `compact ${(await c.hashKV(HashKVRequest.fromPartial({ revision: 2n }))).compactRevision}`, want: COMPACTED },
  { name: 'HashKV at the compacted revision', run: async (c) => `compact ${(await c.hashKV(HashKVRequest.fromPartial({ revision: compactAt }))).compactRevision}`, want: COMPACTED },
  { name: 'HashKV at a future revision', run: async (c) => `compact ${(await c.hashKV(HashKVRequest.fromPartial({ revision: 1000n }))).compactRevision}`, want: FUTURE },
  { name: 'HashKV at the current revision', run: async (c) => { const h = await c.hashKV(HashKVRequest.fromPartial({ revision: 9n })); return `rev ${h.header?.revision} compact ${h.compactRevision}`; }, want: { ok: 'rev 9 compact 8' } },

  // --- watch create errors
  {
    name: 'Watch create with range_end < key',
    run: async (c) => (await c.watch([WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('b'), rangeEnd: b('a') } } })], 1)).map(watchShape).join('\n'),
    want: { ok: '{"rev":"9","watchId":"-1","created":true,"canceled":true,"compactRevision":"0","cancelReason":"mvcc: watcher range is empty","events":0}' },
  },
  {
    name: 'Watch create with range_end == key',
    run: async (c) => (await c.watch([WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('b'), rangeEnd: b('b') } } })], 1)).map(watchShape).join('\n'),
    want: { ok: '{"rev":"9","watchId":"-1","created":true,"canceled":true,"compactRevision":"0","cancelReason":"mvcc: watcher range is empty","events":0}' },
  },
  {
    name: 'Watch create with a duplicate explicit watch_id',
    run: async (c) => (await c.watch([
      WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('a'), watchId: 7n } } }),
      WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('b'), watchId: 7n } } }),
      // the stream still works: an auto-assigned watcher after the failed create gets ID 0
      WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('c') } } }),
    ], 3)).map(watchShape).join('\n'),
    want: {
      ok: [
        '{"rev":"9","watchId":"7","created":true,"canceled":false,"compactRevision":"0","cancelReason":"","events":0}',
        '{"rev":"9","watchId":"-1","created":true,"canceled":true,"compactRevision":"0","cancelReason":"mvcc: duplicate watch ID provided on the WatchStream","events":0}',
        '{"rev":"9","watchId":"0","created":true,"canceled":false,"compactRevision":"0","cancelReason":"","events":0}',
      ].join('\n'),
    },
  },

  {
    name: 'Watch create with start_revision 2^63-1 is created and stays idle',
    run: async (c) => (await c.watch([WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('a'), startRevision: 2n ** 63n - 1n, prevKv: true } } })], 2, 500)).map(watchShape).join('\n'),
    want: { ok: '{"rev":"9","watchId":"0","created":true,"canceled":false,"compactRevision":"0","cancelReason":"","events":0}' },
  },

  // --- bytes that are not a valid protobuf message
  {
    name: 'Range with garbage bytes (length prefix beyond the message)',
    run: async (c) => (await c.rawUnary('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]))).toString('hex'),
    want: err(status.INTERNAL, /./),
    differential: 'code',
  },
  {
    name: 'Put with garbage bytes (invalid wire type)',
    run: async (c) => (await c.rawUnary('/etcdserverpb.KV/Put', Buffer.from([0x0f, 0x0e, 0x0d]))).toString('hex'),
    want: err(status.INTERNAL, /./),
    differential: 'code',
  },
  {
    name: 'Txn with garbage bytes (truncated varint)',
    run: async (c) => (await c.rawUnary('/etcdserverpb.KV/Txn', Buffer.from([0x12, 0x80, 0x80, 0x80]))).toString('hex'),
    want: err(status.INTERNAL, /./),
    differential: 'code',
  },
  {
    name: 'Watch stream with a garbage message',
    run: async (c) => {
      const r = await c.rawBidi('/etcdserverpb.Watch/Watch', [Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])]);
      if (r.error !== undefined) throw r.error;
      return `ended normally after ${r.responses} responses`;
    },
    want: err(status.INTERNAL, /./),
    differential: 'code',
  },

  {
    name: 'LeaseKeepAlive stream with a garbage message',
    run: async (c) => {
      const r = await c.rawBidi('/etcdserverpb.Lease/LeaseKeepAlive', [Buffer.from([0x08, 0xff, 0xff, 0xff])]);
      if (r.error !== undefined) throw r.error;
      return `ended normally after ${r.responses} responses`;
    },
    want: err(status.INTERNAL, /./),
    differential: 'code',
  },

  // --- the server still serves
  {
    name: 'after everything: put and get still work',
    run: async (c) => {
      const p = await c.put(PutRequest.fromPartial({ key: b('alive'), value: b('yes') }));
      const r = await c.range(RangeRequest.fromPartial({ key: b('alive') }));
      return `put rev ${p.header?.revision} get ${r.kvs[0]?.value}`;
    },
    want: { ok: 'put rev 10 get yes' },
  },
];

// ---------------------------------------------------------------------------------------------
// running

async function runAll(endpoint: string): Promise<Outcome[]> {
  const c = new Conn(endpoint);
  const out: Outcome[] = [];
  try {
    for (const k of cases) {
      try {
        out.push({ ok: await k.run(c) });
      } catch (e) {
        const s = e as Partial<grpc.ServiceError>;
        if (typeof s.code !== 'number') throw e; // an assertion or harness bug, not a status
        out.push({ code: s.code, details: s.details ?? '' });
      }
    }
  } finally {
    c.close();
  }
  return out;
}

function show(o: Outcome | undefined): string {
  if (o === undefined) return '(not run)';
  return 'ok' in o ? `OK ${o.ok}` : `${status[o.code]} (${o.code}) ${JSON.stringify(o.details)}`;
}

function matches(o: Outcome, w: Want): boolean {
  const text = (pat: string | RegExp, s: string) => (typeof pat === 'string' ? pat === s : pat.test(s));
  if ('ok' in w) return 'ok' in o && text(w.ok, o.ok);
  return 'code' in o && o.code === w.code && text(w.details, o.details);
}

function wantText(w: Want): string {
  return 'ok' in w ? `OK ${String(w.ok)}` : `${status[w.code]} (${w.code}) ${String(w.details)}`;
}

let ours: Server;
let oursOut: Outcome[] = [];
let etcdOut: Outcome[] | undefined;

before(async () => {
  ours = await startOurServer();
  oursOut = await runAll(ours.endpoint);
  if (hasEtcd()) {
    const etcd = await startRealEtcd();
    try {
      etcdOut = await runAll(etcd.endpoint);
    } finally {
      await etcd.stop();
    }
  }
});
after(async () => {
  await ours?.stop();
});

describe('bad input over gRPC', () => {
  cases.forEach((k, i) => {
    test(k.name, (t) => {
      const got = oursOut[i];
      assert.ok(got !== undefined, 'case did not run');
      const ref = etcdOut?.[i];
      const note = `ours: ${show(got)}\netcd: ${etcdOut === undefined ? '(not installed)' : show(ref)}\nwant: ${wantText(k.want)}`;
      assert.ok(matches(got, k.want), `our server answered differently than expected\n${note}`);
      if (etcdOut === undefined) {
        t.diagnostic('etcd is not installed: expectation checked on our server only');
        return;
      }
      assert.ok(ref !== undefined);
      // The expectation is etcd's behaviour: check it on etcd too (guards the test itself).
      assert.ok(matches(ref, k.want), `real etcd answered differently than expected\n${note}`);
      const mode = k.differential ?? 'full';
      if (mode === 'full') assert.deepEqual(got, ref, note);
      else if (mode === 'code') assert.equal('code' in got ? got.code : 'ok', 'code' in ref ? ref.code : 'ok', note);
    });
  });

  test('our server process is still alive and logged no unexpected handler errors', async () => {
    assert.doesNotThrow(() => process.kill(ours.pid, 0), 'server process is gone');
    const c = new Conn(ours.endpoint);
    try {
      const r = await c.range(RangeRequest.fromPartial({ key: b('alive') }));
      assert.equal(String(r.kvs[0]?.value), 'yes');
    } finally {
      c.close();
    }
    const log = await readFile(ours.logPath, 'utf8');
    assert.doesNotMatch(log, /unexpected error|uncaught|unhandled/i, log.split('\n').filter((l) => /error/i.test(l)).slice(0, 5).join('\n'));
  });
});
