// Gateway mode: the v2 keys API's serializable reads (a GET without quorum=true) answered from an
// in-memory copy of the v2 keyspace that one upstream watch keeps current, instead of a Range or
// Txn round trip to the upstream cluster per GET. A v2 GET in front of etcd then costs what a GET
// in embedded mode costs, and the upstream cluster serves no reads for it.
//
// The copy is the range's state at one revision (`rev`): loaded page by page at one revision, then
// moved forward by the watch's events from the next revision on (the upstream watch layer resumes
// across failovers without loss, src/upstream/watch.ts). Reads are answered from it only when:
//  - the request is a serializable Range, or a Txn with no compares whose only ops are
//    serializable Ranges, inside the mirrored range, at revision 0 or exactly `rev`, with no sort
//    or revision filters (anything else goes upstream as before);
//  - the copy holds every write made through this view: each write's revision (a put, a delete
//    that deleted, a txn branch that wrote) raises a floor, and a read waits (CATCH_UP_MS at
//    most) until the watch has brought the copy to it. So a v2 client reads its own writes, as
//    from one etcd member, and reads never go back in time (all come from the one copy, whose
//    revision only grows); writes made by others show up when the watch brings them, as a v2 GET
//    on an etcd follower shows them when it applies. A read whose wait times out goes upstream.
// The answer's header carries `rev` as its revision (X-Etcd-Index): the copy's revision, which is
// at or below the upstream's; a v2 watch from index+1 misses nothing of the v2 keyspace.
//
// A canceled watch (its resume revision compacted) or a failed load drops the copy and loads it
// again after a pause; a copy that would exceed `maxBytes` is dropped (reads go upstream) and tried
// again later. Meanwhile every read goes upstream.
import type { CallContext, V3Backend, WatchOutput, WatchSession } from '../backend/index.js';
import { SortedKeys } from '../core/mvcc/sorted-keys.js';
import {
  RangeRequest, RangeRequest_SortOrder, RangeRequest_SortTarget, WatchRequest,
  type RangeResponse, type RequestOp, type ResponseHeader, type ResponseOp, type TxnRequest, type TxnResponse, type WatchResponse,
} from '../gen/etcdserverpb/rpc.js';
import { Event_EventType, type KeyValue } from '../gen/mvccpb/kv.js';
import type { ReadMirrorStats } from '../metrics/index.js';
import { EMPTY, keyRange, toBin, type KeyRange } from '../util/bytes.js';

const PAGE = 1000;
/** How long a read waits for the watch to bring the copy up to this view's last write. */
const CATCH_UP_MS = 100;
const RETRY_MS = 1000;
const TOO_LARGE_RETRY_MS = 60_000;

export interface MirrorOptions {
  /** The mirrored range [key, rangeEnd). */
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  /** Bytes held at most, keys and values and 512 per key (beyond: no copy, reads go upstream). */
  readonly maxBytes: number;
  /** The copy was dropped or loaded (logs). */
  onState?(state: 'loaded' | 'dropped', detail: string): void;
}

/**
 * What a key costs the process: its bytes and ~0.5 KiB of objects around them (measured: 200,000
 * keys of 24 B with 32 B values took 477 B of heap per key, 676 B of RSS).
 */
function sizeOf(kv: KeyValue): number {
  return kv.key.length + kv.value.length + 512;
}

/** Whether a write answer changed a key (its header revision is then that write's revision). */
function wrote(responses: readonly ResponseOp[]): boolean {
  return responses.some((r) => {
    const x = r.response;
    return x?.$case === 'responsePut' || (x?.$case === 'responseDeleteRange' && x.value.deleted > 0n) || (x?.$case === 'responseTxn' && wrote(x.value.responses));
  });
}

function onlyReads(t: TxnRequest): boolean {
  return [...t.success, ...t.failure].every((op) => op.request?.$case === 'requestRange' || (op.request?.$case === 'requestTxn' && onlyReads(op.request.value)));
}

export class RangeMirror {
  private readonly kvs = new Map<string, KeyValue>();
  private order = new SortedKeys();
  private bytes = 0;
  private readonly lo: string;
  private readonly hi: string;
  /** The copy is the range's state at this revision (0: no copy). */
  private rev = 0n;
  /** The highest revision of a write made through view(). */
  private floor = 0n;
  /** Reads waiting for the copy to reach the floor. */
  private readonly waiters = new Set<() => void>();
  /** The latest upstream header (cluster, member, term for answers). */
  private header: ResponseHeader | undefined;
  private session: WatchSession | undefined;
  private generation = 0;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** The last drop reported (a cluster that stays down is reported once, not every retry). */
  private reported = '';
  /** Reads answered from the copy, and sent upstream (tests and metrics). */
  readonly counts = { served: 0, upstream: 0, loads: 0 };

  constructor(private readonly backend: V3Backend, private readonly o: MirrorOptions) {
    this.lo = toBin(o.key);
    this.hi = toBin(o.rangeEnd);
  }

  /** Loads the copy (in the background; reads go upstream until it is there). */
  start(): void {
    void this.load();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.drop();
  }

  /** The revision of the copy (0: none). */
  get revision(): bigint {
    return this.rev;
  }

  /** For metrics: reads by where they were answered, loads, the copy's cost and revision. */
  stats(): ReadMirrorStats {
    return { ...this.counts, bytes: this.bytes, revision: this.rev };
  }

  /** The backend as the v2 store uses it: its serializable reads of the range from the copy. */
  view(): V3Backend {
    const range = async (req: RangeRequest, ctx?: CallContext): Promise<RangeResponse> => {
      if (this.behind() && req.serializable) await this.catchUp();
      const kr = this.servable(req);
      if (kr !== undefined) {
        this.counts.served++;
        return this.range(req, kr);
      }
      this.counts.upstream++;
      return this.backend.range(req, ctx);
    };
    const txn = async (req: TxnRequest, ctx?: CallContext): Promise<TxnResponse> => {
      if (this.behind() && onlyReads(req)) await this.catchUp();
      const reads = req.compare.length === 0 && req.failure.length === 0 ? this.servableAll(req.success) : undefined;
      if (reads !== undefined) {
        this.counts.served++;
        const responses: ResponseOp[] = reads.map(([r, kr]) => ({ response: { $case: 'responseRange', value: this.range(r, kr) } }));
        return { header: this.answerHeader(), succeeded: true, responses };
      }
      if (onlyReads(req)) this.counts.upstream++;
      const resp = await this.backend.txn(req, ctx);
      if (wrote(resp.responses)) this.raiseFloor(resp.header);
      return resp;
    };
    const put = async (req: Parameters<V3Backend['put']>[0], ctx?: CallContext): ReturnType<V3Backend['put']> => {
      const resp = await this.backend.put(req, ctx);
      this.raiseFloor(resp.header);
      return resp;
    };
    const deleteRange = async (req: Parameters<V3Backend['deleteRange']>[0], ctx?: CallContext): ReturnType<V3Backend['deleteRange']> => {
      const resp = await this.backend.deleteRange(req, ctx);
      if (resp.deleted > 0n) this.raiseFloor(resp.header);
      return resp;
    };
    const own: Record<string, unknown> = { range, txn, put, deleteRange };
    return new Proxy(this.backend, {
      get: (target, prop, receiver): unknown => (typeof prop === 'string' && prop in own ? own[prop] : Reflect.get(target, prop, receiver)),
    });
  }

  /** A copy exists and lacks a write made through view(). */
  private behind(): boolean {
    return this.rev !== 0n && this.rev < this.floor;
  }

  /** Resolves when the copy reaches the floor, is dropped, or after CATCH_UP_MS. */
  private catchUp(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, CATCH_UP_MS);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    if (this.waiters.size === 0 || this.behind()) return;
    for (const w of [...this.waiters]) w();
  }

  private raiseFloor(h: ResponseHeader | undefined): void {
    if (h !== undefined && h.revision > this.floor) this.floor = h.revision;
  }

  /** The keys of this Range when the copy answers it exactly as the upstream would, else undefined. */
  private servable(r: RangeRequest): KeyRange | undefined {
    if (this.rev === 0n || this.behind() || !r.serializable) return undefined;
    if (r.revision !== 0n && r.revision !== this.rev) return undefined;
    if (r.sortOrder !== RangeRequest_SortOrder.NONE || r.sortTarget !== RangeRequest_SortTarget.KEY) return undefined;
    if (r.minModRevision !== 0n || r.maxModRevision !== 0n || r.minCreateRevision !== 0n || r.maxCreateRevision !== 0n) return undefined;
    if (r.key.length === 0) return undefined;
    const kr = keyRange(r.key, r.rangeEnd);
    if (kr.key < this.lo) return undefined;
    const inside = kr.end === undefined ? kr.key < this.hi : kr.end !== null && kr.end <= this.hi;
    return inside ? kr : undefined;
  }

  /** Every op a Range the copy answers (with its keys), else undefined. */
  private servableAll(ops: readonly RequestOp[]): [RangeRequest, KeyRange][] | undefined {
    if (ops.length === 0) return undefined;
    const out: [RangeRequest, KeyRange][] = [];
    for (const op of ops) {
      if (op.request?.$case !== 'requestRange') return undefined;
      const kr = this.servable(op.request.value);
      if (kr === undefined) return undefined;
      out.push([op.request.value, kr]);
    }
    return out;
  }

  private answerHeader(): ResponseHeader {
    const h = this.header;
    return { clusterId: h?.clusterId ?? 0n, memberId: h?.memberId ?? 0n, revision: this.rev, raftTerm: h?.raftTerm ?? 0n };
  }

  /** etcd's Range over the copy: key order, limit (more), count, keys_only, count_only. */
  private range(r: RangeRequest, kr: KeyRange): RangeResponse {
    const kvs: KeyValue[] = [];
    let count = 0;
    const limit = Number(r.limit);
    const take = (kv: KeyValue): void => {
      count++;
      if (r.countOnly || (limit > 0 && kvs.length >= limit)) return;
      kvs.push(r.keysOnly ? { ...kv, value: EMPTY } : kv);
    };
    if (kr.end === undefined) {
      const kv = this.kvs.get(kr.key);
      if (kv !== undefined) take(kv);
    } else {
      for (const k of this.order.range(kr.key, kr.end)) take(this.kvs.get(k)!);
    }
    return { header: this.answerHeader(), kvs, more: !r.countOnly && limit > 0 && count > limit, count: BigInt(count) };
  }

  private set(decoded: KeyValue): void {
    // Copies: a decoded key or value is a view of the whole message it arrived in, which a kept
    // view would hold in memory (a page of a thousand keys for one key).
    const kv = { ...decoded, key: Buffer.from(decoded.key), value: Buffer.from(decoded.value) };
    const k = toBin(kv.key);
    const old = this.kvs.get(k);
    if (old === undefined) this.order.insert(k);
    else this.bytes -= sizeOf(old);
    this.kvs.set(k, kv);
    this.bytes += sizeOf(kv);
  }

  private remove(key: Uint8Array): void {
    const k = toBin(key);
    const old = this.kvs.get(k);
    if (old === undefined) return;
    this.kvs.delete(k);
    this.order.delete(k);
    this.bytes -= sizeOf(old);
  }

  private drop(): void {
    this.generation++;
    this.session?.close();
    this.session = undefined;
    this.rev = 0n;
    this.wake();
    this.kvs.clear();
    this.order = new SortedKeys();
    this.bytes = 0;
  }

  private again(ms: number, why: string): void {
    this.drop();
    if (why !== this.reported) this.o.onState?.('dropped', why);
    this.reported = why;
    if (this.closed) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.load(), ms);
    this.retry.unref();
  }

  private async load(): Promise<void> {
    if (this.closed) return;
    this.drop();
    const gen = this.generation;
    this.counts.loads++;
    let at = 0n;
    let key: Buffer = this.o.key;
    try {
      for (;;) {
        // The first page is linearizable and fixes the revision; the others read at it.
        const page = await this.backend.range(RangeRequest.fromPartial({ key, rangeEnd: this.o.rangeEnd, limit: BigInt(PAGE), revision: at }));
        if (gen !== this.generation) return;
        if (at === 0n) {
          at = page.header?.revision ?? 0n;
          this.header = page.header;
        }
        for (const kv of page.kvs) this.set(kv);
        if (this.bytes > this.o.maxBytes) {
          this.again(TOO_LARGE_RETRY_MS, `the v2 keyspace holds more than ${this.o.maxBytes} bytes`);
          return;
        }
        const last = page.kvs[page.kvs.length - 1];
        if (!page.more || last === undefined) break;
        key = Buffer.concat([last.key, Buffer.from([0])]);
      }
    } catch (e) {
      if (gen === this.generation) this.again(RETRY_MS, `loading failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const out: WatchOutput = { send: (resp) => this.onWatch(gen, resp), backlogBytes: () => 0 };
    this.session = this.backend.watch(out);
    this.session.request(WatchRequest.fromPartial({
      requestUnion: { $case: 'createRequest', value: { key: this.o.key, rangeEnd: this.o.rangeEnd, startRevision: at + 1n } },
    }));
    this.rev = at;
    this.reported = '';
    this.o.onState?.('loaded', `${this.kvs.size} keys at revision ${at}`);
  }

  private onWatch(gen: number, resp: WatchResponse): void {
    if (gen !== this.generation) return;
    if (resp.canceled || resp.compactRevision > 0n) {
      this.again(RETRY_MS, `the watch ended: ${resp.cancelReason || `compacted at ${resp.compactRevision}`}`);
      return;
    }
    if (resp.header !== undefined) this.header = resp.header;
    if (resp.events.length === 0) return;
    let rev = this.rev;
    for (const ev of resp.events) {
      const kv = ev.kv;
      if (kv === undefined) continue;
      if (ev.type === Event_EventType.PUT) this.set(kv);
      else this.remove(kv.key);
      if (kv.modRevision > rev) rev = kv.modRevision;
    }
    this.rev = rev;
    this.wake();
    if (this.bytes > this.o.maxBytes) this.again(TOO_LARGE_RETRY_MS, `the v2 keyspace holds more than ${this.o.maxBytes} bytes`);
  }
}
