// The Watch bidi stream over grpc-js: created replies, events with prev_kv, filters, history
// replay, compaction, cancel, progress, txn batching and fragmenting. Every scenario asserts
// etcd's documented behaviour and returns a transcript; the same scenarios run (same request
// sequence, fresh store) against real etcd 3.4 and the transcripts must be equal.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  CompactionRequest, DeleteRangeRequest, KVClient, LeaseClient, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchClient,
  WatchCreateRequest_FilterType as Filter, WatchRequest,
  type CompactionResponse, type DeleteRangeResponse, type PutResponse, type RangeResponse, type TxnResponse,
  type WatchCreateRequest, type WatchResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import { Event_EventType as EventType, type Event, type KeyValue } from '../../src/gen/mvccpb/kv.js';
import { hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

const WAIT_MS = 5000;
const QUIET_MS = 300;
const b = (s: string) => Buffer.from(s);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const CHANNEL_OPTS = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };

type Cb<T> = (err: grpc.ServiceError | null, res: T) => void;
type Method<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: Cb<Res>) => unknown;
function call<Req, Res>(fn: Method<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, new grpc.Metadata(), { deadline: Date.now() + 15_000 }, (err, res) => (err ? reject(err) : resolve(res))));
}

class KV {
  private readonly c: KVClient;
  private readonly l: LeaseClient;
  constructor(endpoint: string) {
    this.c = new KVClient(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTS);
    this.l = new LeaseClient(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTS);
  }
  put(key: string, value: string | Buffer, lease = 0n): Promise<PutResponse> {
    return call(this.c.put.bind(this.c), PutRequest.fromPartial({ key: b(key), value: typeof value === 'string' ? b(value) : value, lease }));
  }
  grantLease(id: bigint): Promise<unknown> {
    return call(this.l.leaseGrant.bind(this.l), LeaseGrantRequest.fromPartial({ ID: id, TTL: 600n }));
  }
  revokeLease(id: bigint): Promise<unknown> {
    return call(this.l.leaseRevoke.bind(this.l), LeaseRevokeRequest.fromPartial({ ID: id }));
  }
  del(key: string): Promise<DeleteRangeResponse> {
    return call(this.c.deleteRange.bind(this.c), DeleteRangeRequest.fromPartial({ key: b(key) }));
  }
  txn(t: TxnRequest): Promise<TxnResponse> {
    return call(this.c.txn.bind(this.c), t);
  }
  compact(rev: bigint): Promise<CompactionResponse> {
    return call(this.c.compact.bind(this.c), CompactionRequest.fromPartial({ revision: rev, physical: true }));
  }
  async rev(): Promise<bigint> {
    const r: RangeResponse = await call(this.c.range.bind(this.c), RangeRequest.fromPartial({ key: b('\0'), countOnly: true }));
    return r.header!.revision;
  }
  close(): void {
    this.c.close();
    this.l.close();
  }
}

/** One Watch stream with a queue of responses. */
class Stream {
  private readonly s: grpc.ClientDuplexStream<WatchRequest, WatchResponse>;
  private readonly q: WatchResponse[] = [];
  private wake: (() => void) | undefined;
  private failed: Error | undefined;

  constructor(client: WatchClient) {
    this.s = client.watch();
    this.s.on('data', (r: WatchResponse) => {
      this.q.push(r);
      this.wake?.();
    });
    this.s.on('error', (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) this.failed = e;
      this.wake?.();
    });
  }

  create(c: Partial<WatchCreateRequest>): void {
    this.s.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: c } }));
  }
  cancel(watchId: bigint): void {
    this.s.write(WatchRequest.fromPartial({ requestUnion: { $case: 'cancelRequest', value: { watchId } } }));
  }
  progress(): void {
    this.s.write(WatchRequest.fromPartial({ requestUnion: { $case: 'progressRequest', value: {} } }));
  }

  async next(ms = WAIT_MS): Promise<WatchResponse> {
    const deadline = Date.now() + ms;
    while (this.q.length === 0) {
      if (this.failed) throw this.failed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no watch response within ${ms} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
    return this.q.shift()!;
  }

  /** Responses until `n` events have arrived in total. */
  async events(n: number, ms = WAIT_MS): Promise<WatchResponse[]> {
    const out: WatchResponse[] = [];
    let count = 0;
    while (count < n) {
      const r = await this.next(ms);
      out.push(r);
      count += r.events.length;
    }
    return out;
  }

  /** Asserts that nothing arrives for `ms`. */
  async none(ms = QUIET_MS): Promise<void> {
    await sleep(ms);
    if (this.failed) throw this.failed;
    assert.equal(this.q.length, 0, `unexpected watch responses: ${this.q.map(shape).join(' | ')}`);
  }

  close(): void {
    this.s.on('error', () => undefined);
    this.s.cancel();
  }
}

function kvText(kv: KeyValue | undefined): string {
  if (kv === undefined) return '-';
  const v = kv.value.length > 64 ? `<${kv.value.length} bytes>` : JSON.stringify(kv.value.toString());
  return `${kv.key}=${v} c${kv.createRevision} m${kv.modRevision} v${kv.version} l${kv.lease}`;
}

function eventText(e: Event): string {
  return `${e.type === EventType.PUT ? 'PUT' : e.type === EventType.DELETE ? 'DELETE' : `type${e.type}`} ${kvText(e.kv)} prev ${kvText(e.prevKv)}`;
}

/** A response without the member-specific header fields (cluster/member ID, raft term). */
function shape(r: WatchResponse): string {
  const parts = [`rev=${r.header === undefined ? 'none' : r.header.revision}`, `id=${r.watchId}`];
  if (r.created) parts.push('created');
  if (r.canceled) parts.push('canceled');
  if (r.compactRevision !== 0n) parts.push(`compact=${r.compactRevision}`);
  if (r.cancelReason !== '') parts.push(`reason=${JSON.stringify(r.cancelReason)}`);
  if (r.fragment) parts.push('fragment');
  if (r.events.length > 0) parts.push(`events=[${r.events.map(eventText).join('; ')}]`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------
// scenarios: each gets a KV client and a Watch client of one fresh server, runs in order

interface Ctx {
  kv: KV;
  watch: WatchClient;
}

type Scenario = { name: string; run(c: Ctx): Promise<string[]> };

const scenarios: Scenario[] = [
  {
    name: 'created replies: header revision is the current revision, auto IDs 0 then 1 per stream',
    async run({ kv, watch }) {
      await kv.put('seed', 'x'); // rev 2
      const cur = await kv.rev();
      const s = new Stream(watch);
      try {
        s.create({ key: b('a') });
        const c0 = await s.next();
        s.create({ key: b('b'), rangeEnd: b('c') });
        const c1 = await s.next();
        assert.equal(c0.created, true);
        assert.equal(c0.watchId, 0n);
        assert.equal(c1.watchId, 1n);
        assert.equal(c0.header?.revision, cur);
        assert.ok(c0.header!.clusterId !== 0n && c0.header!.memberId !== 0n && c0.header!.raftTerm !== 0n, 'header carries cluster, member and term');
        assert.equal(c0.canceled, false);
        assert.equal(c0.events.length, 0);
        // A second stream counts from 0 again.
        const s2 = new Stream(watch);
        try {
          s2.create({ key: b('a') });
          const other = await s2.next();
          assert.equal(other.watchId, 0n);
        } finally {
          s2.close();
        }
        return [shape(c0), shape(c1)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'put and delete events carry prev_kv; a DELETE kv has only key and mod_revision',
    async run({ kv, watch }) {
      const s = new Stream(watch);
      try {
        s.create({ key: b('p/'), rangeEnd: b('p0'), prevKv: true });
        const created = await s.next();
        const p1 = await kv.put('p/a', '1');
        const p2 = await kv.put('p/a', '2');
        await kv.put('q', 'outside');
        const d = await kv.del('p/a');
        const rs = [await s.next(), await s.next(), await s.next()];
        await s.none();
        assert.deepEqual(rs.map((r) => r.header?.revision), [p1.header!.revision, p2.header!.revision, d.header!.revision], 'one response per revision, header = that revision');
        const [e1, e2, e3] = rs.map((r) => {
          assert.equal(r.events.length, 1);
          return r.events[0]!;
        });
        assert.equal(e1!.type, EventType.PUT);
        assert.equal(e1!.prevKv, undefined, 'a put creating the key has no prev_kv');
        assert.equal(e2!.prevKv?.value.toString(), '1');
        assert.equal(e2!.prevKv?.modRevision, p1.header!.revision);
        assert.equal(e3!.type, EventType.DELETE);
        assert.equal(e3!.kv?.modRevision, d.header!.revision);
        assert.equal(e3!.kv?.createRevision, 0n);
        assert.equal(e3!.kv?.version, 0n);
        assert.equal(e3!.kv?.value.length, 0);
        assert.equal(e3!.prevKv?.value.toString(), '2');
        return [shape(created), ...rs.map(shape)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'filters NOPUT and NODELETE drop events; an all-filtered response is not sent',
    async run({ kv, watch }) {
      const s = new Stream(watch);
      try {
        s.create({ key: b('f'), filters: [Filter.NOPUT] });
        s.create({ key: b('f'), filters: [Filter.NODELETE] });
        s.create({ key: b('f'), filters: [Filter.NOPUT, Filter.NODELETE] });
        const created = [await s.next(), await s.next(), await s.next()];
        assert.deepEqual(created.map((r) => r.watchId), [0n, 1n, 2n]);
        await kv.put('f', '1');
        const putSeen = await s.next();
        await s.none();
        await kv.del('f');
        const delSeen = await s.next();
        await s.none();
        assert.equal(putSeen.watchId, 1n, 'only the NODELETE watcher sees the put');
        assert.equal(putSeen.events[0]?.type, EventType.PUT);
        assert.equal(delSeen.watchId, 0n, 'only the NOPUT watcher sees the delete');
        assert.equal(delSeen.events[0]?.type, EventType.DELETE);
        return [...created, putSeen, delSeen].map(shape);
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'start_revision replays history in order, then continues live',
    async run({ kv, watch }) {
      const revs: bigint[] = [];
      for (const v of ['1', '2', '3', '4', '5']) revs.push((await kv.put('h', v)).header!.revision);
      revs.push((await kv.del('h')).header!.revision);
      const s = new Stream(watch);
      try {
        s.create({ key: b('h'), startRevision: revs[1]!, prevKv: true });
        const created = await s.next();
        assert.equal(created.created, true);
        assert.equal(created.events.length, 0, 'events never come with the created reply');
        const replay = await s.events(5);
        const events = replay.flatMap((r) => r.events);
        assert.deepEqual(events.map((e) => e.kv?.modRevision), revs.slice(1));
        assert.deepEqual(events.map((e) => (e.type === EventType.PUT ? e.kv?.value.toString() : 'DEL')), ['2', '3', '4', '5', 'DEL']);
        const current = await kv.rev();
        for (const r of replay) assert.equal(r.header?.revision, current, 'catch-up header revision = current store revision');
        const live = await kv.put('h', 'again');
        const next = await s.next();
        assert.equal(next.header?.revision, live.header!.revision);
        assert.equal(next.events[0]?.kv?.version, 1n, 'recreated after delete: version 1');
        // A start revision in the future just waits for it.
        s.create({ key: b('h'), startRevision: live.header!.revision + 2n });
        const fut = await s.next();
        await kv.put('h', 'skipped');
        const got = await s.next(); // watcher 0 only
        const hit = await kv.put('h', 'seen');
        const both = [await s.next(), await s.next()].sort((x, y) => Number(x.watchId - y.watchId));
        assert.equal(got.watchId, 0n);
        assert.deepEqual(both.map((r) => [r.watchId, r.header?.revision]), [[0n, hit.header!.revision], [1n, hit.header!.revision]]);
        return [shape(created), ...replay.map(shape), shape(next), shape(fut), shape(got), ...both.map(shape)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'a txn with several puts (or a delete and a put) arrives as one response, events in op order',
    async run({ kv, watch }) {
      const s = new Stream(watch);
      try {
        s.create({ key: b('t/'), rangeEnd: b('t0') });
        const created = await s.next();
        const put = (k: string, v: string): RequestOp => RequestOp.fromPartial({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b(k), value: b(v) }) } });
        const t = await kv.txn(TxnRequest.fromPartial({ success: [put('t/b', '1'), put('t/a', '2'), put('t/c', '3')] }));
        const r = await s.next();
        await s.none();
        assert.equal(r.header?.revision, t.header!.revision);
        assert.deepEqual(r.events.map((e) => e.kv?.key.toString()), ['t/b', 't/a', 't/c']);
        assert.ok(r.events.every((e) => e.kv?.modRevision === t.header!.revision));
        const d = await kv.txn(TxnRequest.fromPartial({
          success: [
            RequestOp.fromPartial({ request: { $case: 'requestDeleteRange', value: DeleteRangeRequest.fromPartial({ key: b('t/a') }) } }),
            put('t/d', '4'),
          ],
        }));
        const r2 = await s.next();
        assert.equal(r2.header?.revision, d.header!.revision);
        assert.deepEqual(r2.events.map((e) => `${e.type} ${e.kv?.key}`), [`${EventType.DELETE} t/a`, `${EventType.PUT} t/d`]);
        return [shape(created), shape(r), shape(r2)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'an empty key means key 0x00: alone it watches only that key, with range_end 0x00 every key',
    async run({ kv, watch }) {
      const s = new Stream(watch);
      try {
        s.create({ key: b(''), rangeEnd: b('\0') });
        s.create({ key: b('') });
        s.create({ key: b('m'), rangeEnd: b('\0') });
        const created = [await s.next(), await s.next(), await s.next()];
        await kv.put('\0', 'nul');
        const r1 = [await s.next(), await s.next()].sort((x, y) => Number(x.watchId - y.watchId));
        await s.none();
        await kv.put('a', '1');
        const r2 = await s.next();
        await s.none();
        await kv.put('zz', '2');
        const r3 = [await s.next(), await s.next()].sort((x, y) => Number(x.watchId - y.watchId));
        await s.none();
        assert.deepEqual(r1.map((r) => r.watchId), [0n, 1n]);
        assert.equal(r2.watchId, 0n);
        assert.deepEqual(r3.map((r) => r.watchId), [0n, 2n]);
        return [...created, ...r1, r2, ...r3].map(shape);
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'a DeleteRange and a lease revoke each arrive as one response, deletes in key order',
    async run({ kv, watch }) {
      for (const k of ['d/c', 'd/a', 'd/b']) await kv.put(k, k);
      const s = new Stream(watch);
      try {
        s.create({ key: b('d/'), rangeEnd: b('d0'), prevKv: true });
        const created = await s.next();
        const del = await kv.txn(TxnRequest.fromPartial({
          success: [RequestOp.fromPartial({ request: { $case: 'requestDeleteRange', value: DeleteRangeRequest.fromPartial({ key: b('d/'), rangeEnd: b('d0') }) } })],
        }));
        const r1 = await s.next();
        assert.equal(r1.header?.revision, del.header!.revision);
        assert.deepEqual(r1.events.map((e) => `${e.type} ${e.kv?.key} ${e.prevKv?.value}`), ['1 d/a d/a', '1 d/b d/b', '1 d/c d/c']);
        await kv.grantLease(31337n);
        await kv.put('d/y', 'y', 31337n);
        await kv.put('d/x', 'x', 31337n);
        const puts = [await s.next(), await s.next()];
        await kv.revokeLease(31337n);
        const r2 = await s.next();
        assert.deepEqual(r2.events.map((e) => `${e.type} ${e.kv?.key}`), ['1 d/x', '1 d/y']);
        assert.deepEqual(r2.events.map((e) => e.prevKv?.lease), [31337n, 31337n]);
        await s.none();
        return [shape(created), shape(r1), ...puts.map(shape), shape(r2)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'history replay racing live writes: every revision exactly once, in order',
    async run({ kv, watch }) {
      const put = (i: number) => kv.put(`race/${i % 50}`, String(i));
      const writeMany = async (from: number, n: number, conc: number): Promise<bigint[]> => {
        const revs: bigint[] = [];
        let next = from;
        await Promise.all(Array.from({ length: conc }, async () => {
          while (next < from + n) revs.push((await put(next++)).header!.revision);
        }));
        return revs.sort((x, y) => (x < y ? -1 : 1));
      };
      // More than 1000 revisions of history (catch-up works in chunks), then 300 more written
      // while the watcher catches up.
      const early = await writeMany(0, 1200, 16);
      const s = new Stream(watch);
      try {
        s.create({ key: b('race/'), rangeEnd: b('race0'), startRevision: early[0]! });
        const late = writeMany(1200, 300, 8);
        const created = await s.next();
        const lateRevs = await late;
        const last = lateRevs[lateRevs.length - 1]!;
        const seen: bigint[] = [];
        while (seen.length === 0 || seen[seen.length - 1]! < last) {
          const r = await s.next();
          for (const e of r.events) seen.push(e.kv!.modRevision);
        }
        await s.none();
        const want = Array.from({ length: Number(last - early[0]! + 1n) }, (_x, i) => early[0]! + BigInt(i));
        assert.equal(seen.length, want.length, 'event count');
        assert.deepEqual(seen, want, 'every revision once, ascending');
        return [shape(created), `events ${seen[0]}..${seen[seen.length - 1]} (${seen.length})`];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'cancel_request answers canceled and stops events; an unknown ID gets no reply',
    async run({ kv, watch }) {
      const s = new Stream(watch);
      try {
        s.create({ key: b('c') });
        const created = await s.next();
        await kv.put('c', '1');
        const ev = await s.next();
        s.cancel(created.watchId);
        const canceled = await s.next();
        assert.equal(canceled.canceled, true);
        assert.equal(canceled.watchId, created.watchId);
        assert.equal(canceled.header?.revision, await kv.rev());
        await kv.put('c', '2');
        await s.none();
        s.cancel(99n);
        await s.none();
        // Auto IDs keep counting: a canceled watcher's ID is not handed out again.
        s.create({ key: b('c') });
        const again = await s.next();
        return [shape(created), shape(ev), shape(canceled), shape(again)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'progress_request answers once with watch_id -1 and the current revision',
    async run({ kv, watch }) {
      const s = new Stream(watch);
      try {
        s.progress(); // no watchers yet
        const p0 = await s.next();
        s.create({ key: b('x1') });
        s.create({ key: b('x2') });
        const created = [await s.next(), await s.next()];
        await kv.put('other', 'v');
        s.progress();
        const p1 = await s.next();
        await s.none();
        const cur = await kv.rev();
        for (const p of [p0, p1]) {
          assert.equal(p.watchId, -1n);
          assert.equal(p.created, false);
          assert.equal(p.canceled, false);
          assert.equal(p.events.length, 0);
        }
        assert.equal(p1.header?.revision, cur);
        return [shape(p0), ...created.map(shape), shape(p1)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'fragment=true splits a >= 2 MiB response: fragment on all parts but the last',
    async run({ kv, watch }) {
      const big = (c: string) => Buffer.alloc(900_000, c);
      const first = await kv.put('big/1', big('a'));
      await kv.put('big/2', big('b'));
      await kv.put('big/3', big('c'));
      const s = new Stream(watch);
      try {
        s.create({ key: b('big/'), rangeEnd: b('big0'), startRevision: first.header!.revision, fragment: true });
        const created = await s.next();
        const parts = await s.events(3);
        assert.ok(parts.length > 1, `expected more than one response, got ${parts.length}`);
        parts.forEach((p, i) => assert.equal(p.fragment, i < parts.length - 1, `fragment flag of part ${i}`));
        assert.deepEqual(parts.flatMap((p) => p.events.map((e) => e.kv?.key.toString())), ['big/1', 'big/2', 'big/3']);
        assert.ok(parts.every((p) => p.watchId === created.watchId));
        // Without fragment the same history comes whole.
        s.create({ key: b('big/'), rangeEnd: b('big0'), startRevision: first.header!.revision });
        const created2 = await s.next();
        const whole = await s.events(3);
        assert.equal(whole.length, 1);
        assert.equal(whole[0]!.fragment, false);
        return [shape(created), ...parts.map(shape), shape(created2), ...whole.map(shape)];
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'a compacted start revision: created, then canceled with compact_revision and no reason',
    async run({ kv, watch }) {
      await kv.put('kk', 'old');
      await kv.put('k', '1');
      await kv.put('k', '2');
      const cur = await kv.rev();
      await kv.compact(cur - 1n);
      await kv.put('kk', 'new');
      const s = new Stream(watch);
      try {
        s.create({ key: b('k'), startRevision: 2n });
        const created = await s.next();
        const canceled = await s.next();
        assert.equal(created.created, true);
        assert.equal(canceled.canceled, true);
        assert.equal(canceled.watchId, created.watchId);
        assert.equal(canceled.compactRevision, cur - 1n);
        assert.equal(canceled.cancelReason, '');
        assert.equal(canceled.header?.revision ?? 0n, 0n, 'header without revision');
        // start_revision == compacted revision is accepted and replays from there.
        // The prev_kv of kk's put is its value as of before the compaction (kept: newest <= it).
        s.create({ key: b('k'), rangeEnd: b('l'), startRevision: cur - 1n, prevKv: true });
        const ok = await s.next();
        const replay = await s.events(3);
        assert.equal(ok.canceled, false);
        assert.deepEqual(replay.flatMap((r) => r.events.map((e) => `${e.kv?.value} prev ${e.prevKv?.value}`)), ['1 prev undefined', '2 prev 1', 'new prev old']);
        await s.none();
        return [shape(created), shape(canceled), shape(ok), ...replay.map(shape)];
      } finally {
        s.close();
      }
    },
  },
];

interface Run {
  transcripts: Map<string, string[]>;
  errors: Map<string, unknown>;
}

async function runAll(srv: Server): Promise<Run> {
  const kv = new KV(srv.endpoint);
  const watch = new WatchClient(srv.endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTS);
  const run: Run = { transcripts: new Map(), errors: new Map() };
  try {
    for (const sc of scenarios) {
      try {
        run.transcripts.set(sc.name, await sc.run({ kv, watch }));
      } catch (e) {
        run.errors.set(sc.name, e);
      }
    }
  } finally {
    kv.close();
    watch.close();
  }
  return run;
}

let ours: Run;
let etcd: Run | undefined;

before(async () => {
  const o = await startOurServer();
  try {
    ours = await runAll(o);
  } finally {
    await o.stop();
  }
  if (hasEtcd()) {
    const e = await startRealEtcd();
    try {
      etcd = await runAll(e);
    } finally {
      await e.stop();
    }
  }
});

describe('Watch over gRPC', () => {
  for (const sc of scenarios) {
    test(sc.name, (t) => {
      const err = ours.errors.get(sc.name);
      if (err !== undefined) throw err;
      const got = ours.transcripts.get(sc.name);
      assert.ok(got !== undefined);
      if (etcd === undefined) {
        t.diagnostic('etcd is not installed: checked on our server only');
        return;
      }
      const refErr = etcd.errors.get(sc.name);
      if (refErr !== undefined) {
        assert.fail(`the scenario's own expectations fail on real etcd (fix the test): ${String(refErr)}`);
      }
      assert.deepEqual(got, etcd.transcripts.get(sc.name), 'transcript differs from real etcd');
    });
  }
});
