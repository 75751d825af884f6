// Watches through the upstream: ONE upstream Watch stream per auth token carries every upstream
// watcher, and every local watcher with the same parameters (key, range end, filters, prev_kv,
// progress_notify) whose start revision the shared upstream watcher can serve joins it instead
// of creating another (fan-out). A shared watcher remembers the revision it is synced to; when its
// stream breaks (member killed, leader lost) it is created again on the next endpoint from that
// revision + 1, so local watchers see every event once and in order across failovers.
import * as grpc from '@grpc/grpc-js';
import type { WatchOutput, WatchSession } from '../backend/index.js';
import {
  WatchCreateRequest, WatchRequest, type ResponseHeader, type WatchResponse,
} from '../gen/etcdserverpb/rpc.js';
import { isEndpointFailure } from './errors.js';
import { requireLeader, type Endpoint, type EndpointPool } from './pool.js';

const RESUME_PAUSE_MS = 100;

interface Subscriber {
  readonly session: UpstreamWatchSession;
  readonly id: bigint;
  /** Events below this revision are not for this subscriber (it joined a watcher that started earlier). */
  startRev: bigint;
  /** Canceled or closed locally. */
  gone?: boolean;
  /** Told `created` already. */
  created: boolean;
  /** The upstream watcher serving it. */
  shared?: SharedWatcher | undefined;
  /** Its place in the session's output, held until its `created` answer arrives. */
  slot?: Slot | undefined;
}

/** One response of a session's output in order; a create's slot is filled when upstream answers. */
interface Slot {
  resp: WatchResponse | undefined;
}

/** One upstream watcher and its local subscribers. */
class SharedWatcher {
  readonly subs = new Set<Subscriber>();
  /** The revision the next upstream event will have at least; 0 until created (when started "now"). */
  nextRev: bigint;
  created = false;
  upstreamId = -1n;
  conn: UpstreamStream | undefined;

  constructor(readonly key: string, readonly create: WatchCreateRequest) {
    this.nextRev = create.startRevision;
  }

  /** Whether a local watcher starting at `startRev` (0: now) can be served by this one. */
  canServe(startRev: bigint): boolean {
    if (startRev === 0n) return this.created || this.create.startRevision === 0n;
    return this.nextRev !== 0n && startRev >= this.nextRev;
  }
}

/** One upstream Watch call (on one endpoint, for one token) with the shared watchers it carries. */
class UpstreamStream {
  readonly call: grpc.ClientDuplexStream<WatchRequest, WatchResponse>;
  readonly byId = new Map<bigint, SharedWatcher>();
  private nextId = 1n;
  dead = false;
  /** The header of the last response (cluster and member IDs for answers made up locally). */
  lastHeader: ResponseHeader | undefined;
  /** Creates sent and not answered yet, in order: a refused create is answered with watch ID -1. */
  readonly pendingCreates: SharedWatcher[] = [];

  constructor(readonly hub: UpstreamWatchHub, readonly ep: Endpoint, readonly token: string | undefined) {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('token', token);
    this.call = ep.watch.watch(requireLeader(md));
    this.call.on('data', (r: WatchResponse) => hub.onResponse(this, r));
    this.call.on('error', (e) => hub.onBroken(this, e));
    this.call.on('end', () => hub.onBroken(this, undefined));
  }

  add(w: SharedWatcher): void {
    const id = this.nextId++;
    w.upstreamId = id;
    w.conn = this;
    this.byId.set(id, w);
    this.pendingCreates.push(w);
    // Resume where the watcher is synced; a watcher not created yet starts as it was asked to.
    const startRevision = w.created ? w.nextRev : w.create.startRevision;
    this.call.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { ...w.create, startRevision, watchId: id, fragment: false } } }));
  }

  remove(w: SharedWatcher): void {
    if (!this.byId.delete(w.upstreamId)) return;
    if (!this.dead) this.call.write(WatchRequest.fromPartial({ requestUnion: { $case: 'cancelRequest', value: { watchId: w.upstreamId } } }));
  }
}

export class UpstreamWatchHub {
  private readonly streams = new Map<string, UpstreamStream>();
  private readonly shared = new Map<string, SharedWatcher[]>();
  private closed = false;
  /** The header of the last upstream watch response (IDs and the newest revision seen). */
  lastHeader: ResponseHeader | undefined;
  /** Upstream watchers created so far (resumptions included): what coalescing saves shows here. */
  upstreamCreates = 0;

  constructor(
    private readonly pool: EndpointPool,
    readonly backlogBytesMax: number,
    /** The cluster's current revision (a linearizable read), for watchers that start "now". */
    private readonly currentRevision: (token: string | undefined) => Promise<bigint>,
  ) {}

  session(out: WatchOutput, token: string | undefined): WatchSession {
    return new UpstreamWatchSession(this, out, token);
  }

  /** Upstream Watch streams now open (one per token). */
  get upstreamStreams(): number {
    return this.streams.size;
  }

  /** Number of upstream watchers now open. */
  get upstreamWatchers(): number {
    let n = 0;
    for (const list of this.shared.values()) n += list.length;
    return n;
  }

  subscribe(sub: Subscriber, c: WatchCreateRequest, token: string | undefined): void {
    const create = WatchCreateRequest.fromPartial({ ...c, watchId: 0n, fragment: false });
    const key = JSON.stringify([token ?? null, c.key.toString('hex'), c.rangeEnd.toString('hex'), [...c.filters].sort(), c.prevKv, c.progressNotify]);
    const list = this.shared.get(key) ?? [];
    const w = list.find((x) => x.canServe(c.startRevision));
    if (w === undefined) return this.startShared(sub, key, create, token);
    if (!w.created || c.startRevision !== 0n) {
      w.subs.add(sub);
      sub.shared = w;
      if (w.created) this.tellCreated(w, sub, w.nextRev - 1n);
      return;
    }
    // "From now" joining a running watcher: now is the cluster's current revision R (as etcd's
    // created header says), so this subscriber gets the events after R, and only a watcher not
    // yet past R + 1 can serve it.
    void this.currentRevision(token).then((r) => r, () => w.nextRev - 1n).then((r) => {
      if (sub.gone === true || this.closed) return;
      sub.startRev = r + 1n;
      const list2 = this.shared.get(key) ?? [];
      const w2 = list2.find((x) => x.created && x.canServe(r + 1n));
      if (w2 === undefined) return this.startShared(sub, key, WatchCreateRequest.fromPartial({ ...create, startRevision: r + 1n }), token);
      w2.subs.add(sub);
      sub.shared = w2;
      this.tellCreated(w2, sub, r);
    });
  }

  private startShared(sub: Subscriber, key: string, create: WatchCreateRequest, token: string | undefined): void {
    const w = new SharedWatcher(key, create);
    const list = this.shared.get(key) ?? [];
    list.push(w);
    this.shared.set(key, list);
    w.subs.add(sub);
    sub.shared = w;
    this.attach(w, token);
  }

  unsubscribe(sub: Subscriber): void {
    sub.gone = true;
    const w = sub.shared;
    sub.shared = undefined;
    if (w !== undefined && w.subs.delete(sub) && w.subs.size === 0) this.retire(w);
  }

  /** The revision up to which a subscriber has been sent every event. */
  syncedRevisionOf(sub: Subscriber): bigint | undefined {
    const w = sub.shared;
    return w?.created === true ? w.nextRev - 1n : undefined;
  }

  private retire(w: SharedWatcher): void {
    w.conn?.remove(w);
    const list = this.shared.get(w.key);
    if (list === undefined) return;
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.shared.delete(w.key);
  }

  private attach(w: SharedWatcher, token: string | undefined): void {
    if (this.closed) return;
    const k = token ?? '';
    let s = this.streams.get(k);
    if (s === undefined || s.dead) {
      s = new UpstreamStream(this, this.pool.pick(), token);
      this.streams.set(k, s);
    }
    this.upstreamCreates++;
    s.add(w);
  }

  private tellCreated(w: SharedWatcher, sub: Subscriber, rev: bigint): void {
    sub.created = true;
    sub.session.deliver(sub, { ...blank(headerOf(w, rev)), watchId: sub.id, created: true });
  }

  onResponse(s: UpstreamStream, r: WatchResponse): void {
    this.pool.markUp(s.ep);
    s.lastHeader = r.header;
    if (r.header !== undefined && (this.lastHeader === undefined || r.header.revision >= this.lastHeader.revision)) this.lastHeader = r.header;
    const head = r.created ? s.pendingCreates.shift() : undefined;
    const w = r.watchId === -1n ? head : s.byId.get(r.watchId);
    if (w === undefined) return;
    const rev = r.header?.revision ?? 0n;
    if (r.created && !r.canceled) {
      if (!w.created) {
        w.created = true;
        if (w.nextRev === 0n) w.nextRev = rev + 1n;
        for (const sub of w.subs) {
          if (!sub.created) {
            sub.created = true;
            sub.session.deliver(sub, { ...r, watchId: sub.id });
          }
        }
        if (w.subs.size === 0) this.retire(w);
      }
      return;
    }
    if (r.canceled) {
      // Compacted, refused (bad token, empty range) or canceled by the member: final for every subscriber.
      s.byId.delete(w.upstreamId);
      this.retire(w);
      for (const sub of w.subs) {
        sub.shared = undefined;
        // A refused create is answered as etcd does: watch ID -1, created and canceled.
        const refused = r.created && !sub.created;
        sub.session.deliver(sub, { ...r, watchId: refused ? -1n : sub.id, created: refused }, true);
      }
      w.subs.clear();
      return;
    }
    if (r.events.length === 0) {
      // A progress notification: everything up to rev has been sent.
      if (rev + 1n > w.nextRev) w.nextRev = rev + 1n;
      for (const sub of w.subs) sub.session.deliver(sub, { ...r, watchId: sub.id });
      return;
    }
    w.nextRev = r.events[r.events.length - 1]!.kv!.modRevision + 1n;
    for (const sub of w.subs) {
      const events = sub.startRev > 0n ? r.events.filter((e) => e.kv!.modRevision >= sub.startRev) : r.events;
      if (events.length > 0) sub.session.deliver(sub, { ...r, watchId: sub.id, events });
    }
  }

  /** The stream broke: every watcher it carried is created again, on a healthy endpoint, from where it is synced. */
  onBroken(s: UpstreamStream, e: unknown): void {
    if (s.dead) return;
    s.dead = true;
    if (this.streams.get(s.token ?? '') === s) this.streams.delete(s.token ?? '');
    if (e === undefined || isEndpointFailure(e)) this.pool.markDown(s.ep, e === undefined ? 'watch stream ended' : (e as grpc.ServiceError).details);
    s.call.cancel();
    const orphans = [...s.byId.values()];
    s.byId.clear();
    for (const w of orphans) w.conn = undefined;
    if (orphans.length > 0) this.resume(orphans, s.token, RESUME_PAUSE_MS);
  }

  private resume(orphans: SharedWatcher[], token: string | undefined, pauseMs: number): void {
    setTimeout(() => {
      if (this.closed) return;
      for (const w of orphans) if (w.subs.size > 0 && w.conn === undefined) this.attach(w, token);
    }, pauseMs).unref();
  }

  close(): void {
    this.closed = true;
    for (const s of this.streams.values()) {
      s.dead = true;
      s.call.cancel();
    }
    this.streams.clear();
    this.shared.clear();
  }
}

function headerOf(w: SharedWatcher, rev: bigint): ResponseHeader {
  const h = w.conn?.lastHeader;
  return { clusterId: h?.clusterId ?? 0n, memberId: h?.memberId ?? 0n, raftTerm: h?.raftTerm ?? 0n, revision: rev };
}

function blank(header: ResponseHeader): WatchResponse {
  return { header, watchId: 0n, created: false, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events: [] };
}

/** The local side of one watch stream: its watch IDs, progress answers and the slow-consumer bound. */
export class UpstreamWatchSession implements WatchSession {
  private readonly byId = new Map<bigint, Subscriber>();
  private nextId = 0n;
  private closed = false;
  /**
   * Responses in the order etcd would send them: a local answer (duplicate ID, cancel, progress)
   * must not overtake the `created` of an earlier create still travelling to the upstream.
   */
  private readonly outbox: Slot[] = [];

  constructor(private readonly hub: UpstreamWatchHub, private readonly out: WatchOutput, private readonly token: string | undefined) {}

  request(req: WatchRequest): void {
    if (this.closed) return;
    const u = req.requestUnion;
    switch (u?.$case) {
      case 'createRequest': {
        const c = u.value;
        let id = c.watchId;
        if (id === 0n) {
          while (this.byId.has(this.nextId)) this.nextId++;
          id = this.nextId++;
        } else if (this.byId.has(id)) {
          this.emit({ ...blank(this.header()), watchId: -1n, created: true, canceled: true, cancelReason: 'mvcc: duplicate watch ID provided on the WatchStream' });
          return;
        }
        // Registered before subscribing: a shared watcher already created answers at once.
        const slot: Slot = { resp: undefined };
        this.outbox.push(slot);
        const sub: Subscriber = { session: this, id, startRev: c.startRevision, created: false, slot };
        this.byId.set(id, sub);
        this.hub.subscribe(sub, c, this.token);
        return;
      }
      case 'cancelRequest': {
        const sub = this.byId.get(u.value.watchId);
        if (sub === undefined) return;
        this.byId.delete(sub.id);
        this.hub.unsubscribe(sub);
        if (sub.slot !== undefined) sub.slot.resp = { ...blank(this.header()), watchId: sub.id, created: true };
        this.emit({ ...blank(this.header()), watchId: sub.id, canceled: true });
        return;
      }
      case 'progressRequest':
        // Every watcher of this stream has been sent everything up to the least synced revision.
        this.emit({ ...blank(this.header(this.syncedRevision())), watchId: -1n });
        return;
      case undefined:
        return;
    }
  }

  private header(rev?: bigint): ResponseHeader {
    const h = this.hub.lastHeader;
    return { clusterId: h?.clusterId ?? 0n, memberId: h?.memberId ?? 0n, raftTerm: h?.raftTerm ?? 0n, revision: rev ?? h?.revision ?? 0n };
  }

  private syncedRevision(): bigint {
    let min: bigint | undefined;
    for (const sub of this.byId.values()) {
      const r = this.hub.syncedRevisionOf(sub);
      if (r !== undefined && (min === undefined || r < min)) min = r;
    }
    return min ?? this.hub.lastHeader?.revision ?? 0n;
  }

  /** From the hub: one response for one of this stream's watchers (`final`: the watcher is gone). */
  deliver(sub: Subscriber, resp: WatchResponse, final = false): void {
    if (this.closed || this.byId.get(sub.id) !== sub) return;
    if (final) this.byId.delete(sub.id);
    const slot = sub.slot;
    if (slot !== undefined && (resp.created || final)) {
      sub.slot = undefined;
      slot.resp = resp;
      this.flush();
    } else {
      this.emit(resp);
    }
  }

  private emit(resp: WatchResponse): void {
    this.outbox.push({ resp });
    this.flush();
  }

  private flush(): void {
    while (this.outbox.length > 0 && this.outbox[0]!.resp !== undefined && !this.closed) {
      this.out.send(this.outbox.shift()!.resp!);
      if (this.out.backlogBytes() > this.hub.backlogBytesMax) return this.overflow();
    }
  }

  /** The consumer is not reading: cancel every watcher of the stream rather than buffer more. */
  private overflow(): void {
    const subs = [...this.byId.values()];
    this.byId.clear();
    this.outbox.length = 0;
    const reason = `etcdserver: watch stream too slow: more than ${this.hub.backlogBytesMax} bytes of responses unread`;
    for (const sub of subs) {
      this.hub.unsubscribe(sub);
      this.out.send({ ...blank(this.header()), watchId: sub.id, canceled: true, cancelReason: reason });
    }
  }

  close(): void {
    this.closed = true;
    for (const sub of this.byId.values()) this.hub.unsubscribe(sub);
    this.byId.clear();
  }
}
