// The shared v2 watch hub: ONE backend watch over the whole v2 keyspace serves every v2 long poll
// and stream of this process, so 10,000 waiting clients cost one v3 watcher, not 10,000.
//
// The hub decodes each revision into v2 candidates once (candidatesOf: the recorded action, or an
// inferred set/expire) and keeps the last HISTORY_WINDOW of them in a ring; a subscriber whose start
// index the ring covers gets the ring's matching entries, then live ones, in revision order. The v2
// event of an entry (node and prevNode, read at its revision and the one before) is built lazily,
// once, when the first subscriber needs it, and shared by all: an idle hub costs one decode of
// P/event per write, no reads. A start index older than the ring's coverage (just after start, or
// more than HISTORY_WINDOW entries ago) is not served here: the caller falls back to a watch of its
// own (watch.ts openWatch), which replays history from the backend.
//
// Per-subscriber bound: like etcd's v2 watcher (an event channel of 100), a subscriber with
// SUBSCRIBER_QUEUE_MAX undelivered entries (a stream whose client does not read) is dropped and its
// response ends; the client re-watches from its last index as v2 clients do.
import type { V3Backend, WatchSession } from '../backend/index.js';
import { WatchCreateRequest, type WatchResponse } from '../gen/etcdserverpb/rpc.js';
import type { KeySchema } from './keys.js';
import { headerOf, type V2Event, type V2Header } from './node.js';
import { candidatesOfResponse, eventOf, existedBefore, HISTORY_WINDOW, matches, needsPriorNode, streamQuirks, type Candidate, type V2Watch, type WatchRequest } from './watch.js';

/** Undelivered entries a subscriber may hold before it is dropped (etcd v2: 100 events). */
export const SUBSCRIBER_QUEUE_MAX = 100;

interface Entry {
  readonly rev: number;
  readonly cand: Candidate;
  /** The v2 event, built on first use (undefined: nothing to report, e.g. the node is gone). */
  event?: Promise<V2Event | undefined>;
}

class Subscriber {
  readonly queue: Entry[] = [];
  /** Set when the hub dropped it (overflow, hub stopped): the response ends. */
  ended = false;
  wake: (() => void) | undefined;
  constructor(readonly req: WatchRequest, readonly cur: number, readonly from: number) {}

  offer(e: Entry): boolean {
    if (e.rev < this.from || !matches(this.req, e.cand, e.rev <= this.cur)) return true;
    this.queue.push(e);
    this.wake?.();
    return this.queue.length <= SUBSCRIBER_QUEUE_MAX;
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }
}

/** Who is told about the shared watch and its subscribers (the server's metrics). */
export interface SharedWatchObserver {
  opened(): { subscribed(): void; unsubscribed(): void; closed(): void };
}

export class V2WatchHub {
  private readonly ring: Entry[] = [];
  /** Entries of every revision >= coveredFrom are in the ring (Infinity: not started). */
  private coveredFrom = Infinity;
  private readonly subs = new Set<Subscriber>();
  private session: WatchSession | undefined;
  private stopped = false;
  private expiries = 0;
  private starting: Promise<void> | undefined;

  private watchStats: ReturnType<SharedWatchObserver['opened']> | undefined;

  constructor(private readonly backend: V3Backend, private readonly keys: KeySchema, private readonly ringMax = HISTORY_WINDOW, private readonly observer?: SharedWatchObserver) {}

  private add(sub: Subscriber): void {
    this.subs.add(sub);
    this.watchStats?.subscribed();
  }

  private drop(sub: Subscriber): void {
    if (this.subs.delete(sub)) this.watchStats?.unsubscribed();
  }

  /** Expirations seen (etcd's `expireCount`): the sweeper's, and lease expiries of v2 nodes. */
  get expired(): number {
    return this.expiries;
  }

  /** Subscribers currently registered (etcd's `watchers` store statistic counts these). */
  get size(): number {
    return this.subs.size;
  }

  /**
   * Opens the backend watch from the current revision + 1; resolves once it is created, rejects
   * when it is refused (e.g. gateway mode: cluster unreachable, or auth on upstream and no
   * --user); a later start() tries again.
   */
  start(): Promise<void> {
    if (this.starting === undefined) {
      const p = this.open();
      this.starting = p;
      p.catch(() => { if (this.starting === p) this.starting = undefined; });
    }
    return this.starting;
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const header = headerOf((await this.backend.txn({ compare: [], success: [], failure: [] })).header);
    if (this.stopped) return;
    let created = false;
    let settle!: (err?: Error) => void;
    const ready = new Promise<void>((res, rej) => (settle = (err) => (err ? rej(err) : res())));
    const session = this.backend.watch({
      send: (resp) => {
        if (!created) {
          if (resp.canceled) {
            session.close();
            if (this.session === session) this.session = undefined;
            settle(new Error(`v2 shared watch refused: ${resp.cancelReason || 'canceled'}`));
            return;
          }
          if (resp.created) {
            created = true;
            this.coveredFrom = header.index + 1;
            this.watchStats = this.observer?.opened();
            settle();
          }
        }
        this.onResponse(resp);
      },
      backlogBytes: () => 0,
    });
    this.session = session;
    const range = this.keys.allRange();
    session.request({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: range.key, rangeEnd: range.rangeEnd, startRevision: BigInt(header.index + 1) }) } });
    await ready;
  }

  private onResponse(resp: WatchResponse): void {
    if (resp.canceled) {
      // Not expected (the watch starts at the current revision and is never slow); start over.
      this.reset();
      if (!this.stopped) void this.start().catch(() => undefined);
      return;
    }
    if (resp.events.length === 0) return;
    for (const entry of candidatesOfResponse(this.keys, resp.events)) this.append(entry);
  }

  private append(e: Entry): void {
    if (e.cand.action === 'expire') {
      // An inferred expiry may be a plain v3 delete: the decoded event tells.
      if (e.cand.inferred) void this.decode(e).then((ev) => { if (ev?.action === 'expire') this.expiries++; });
      else this.expiries++;
    }
    this.ring.push(e);
    if (this.ring.length > this.ringMax) {
      // Evict whole revisions, so that coverage stays exact.
      const evicted = this.ring[0]!.rev;
      while (this.ring.length > 0 && this.ring[0]!.rev === evicted) this.ring.shift();
      this.coveredFrom = evicted + 1;
    }
    for (const s of this.subs) {
      if (!s.offer(e)) {
        this.drop(s);
        s.end();
      }
    }
  }

  /** Drops the ring and every subscriber (their responses end); coverage restarts with the next open. */
  private reset(): void {
    this.session?.close();
    this.session = undefined;
    this.watchStats?.closed();
    this.watchStats = undefined;
    this.starting = undefined;
    this.ring.length = 0;
    this.coveredFrom = Infinity;
    for (const s of this.subs) s.end();
    this.subs.clear();
  }

  stop(): void {
    this.stopped = true;
    this.reset();
  }

  private decode(e: Entry): Promise<V2Event | undefined> {
    // A revision compacted away before anyone asked has nothing to report.
    e.event ??= eventOf(this.backend, this.keys, e.cand).catch(() => undefined);
    return e.event;
  }

  /**
   * A watch served by the hub, or undefined when the ring does not cover its start index (the
   * caller then opens a watch of its own). header: the registration header (its index decides what
   * counts as history, spec 9.3).
   */
  subscribe(req: WatchRequest, header: V2Header, signal: AbortSignal): V2Watch | undefined {
    const cur = header.index;
    const from = req.waitIndex > 0 ? req.waitIndex : cur + 1;
    if (this.stopped || from < this.coveredFrom) return undefined;
    const sub = new Subscriber(req, cur, from);
    // Entries already in the ring first (synchronously, so none is missed), then live ones.
    for (let i = this.firstAtOrAfter(from); i < this.ring.length; i++) {
      if (!sub.offer(this.ring[i]!)) return undefined;
    }
    this.add(sub);
    const hub = this;
    const onAbort = (): void => {
      hub.drop(sub);
      sub.wake?.();
    };
    signal.addEventListener('abort', onAbort);
    const next = async (): Promise<Entry | undefined> => {
      while (sub.queue.length === 0) {
        if (signal.aborted || sub.ended) return undefined;
        await new Promise<void>((res) => (sub.wake = res));
        sub.wake = undefined;
      }
      return sub.queue.shift();
    };
    async function* events(): AsyncGenerator<V2Event> {
      try {
        for (;;) {
          const e = await next();
          if (!e) return;
          if (needsPriorNode(req, e.cand, e.rev <= cur) && !(await existedBefore(hub.backend, hub.keys, req.path, e.rev).catch(() => false))) continue;
          const ev = await hub.decode(e);
          if (!ev) continue;
          const quirks = streamQuirks(req, e.cand, e.rev <= cur);
          yield ev;
          if (quirks.twice) yield ev;
          if (quirks.silentAfter) {
            hub.drop(sub);
            sub.queue.length = 0;
            while (await next()) { /* stays open, silent */ }
            return;
          }
        }
      } finally {
        hub.drop(sub);
        signal.removeEventListener('abort', onAbort);
      }
    }
    return { header, events: events() };
  }

  private firstAtOrAfter(rev: number): number {
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ring[mid]!.rev < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
