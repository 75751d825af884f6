// One watch stream of the embedded backend, as etcd's serverWatchStream: watch IDs of the
// stream, create/cancel/progress requests, events turned into WatchResponses, fragmenting,
// and a bound on what a slow consumer may leave buffered.
import type { ErrorCode, WatchOutput, WatchSession } from '../../backend/index.js';
import type { ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse } from '../../gen/etcdserverpb/rpc.js';
import { WatchCreateRequest_FilterType as Filter } from '../../gen/etcdserverpb/rpc.js';
import { Event, Event_EventType as EventType } from '../../gen/mvccpb/kv.js';
import { keyRange } from '../../util/bytes.js';
import { toKeyValue } from '../kv.js';
import type { Change } from '../mvcc/store.js';
import type { WatchHub, Watcher, WatchSink } from './hub.js';

export interface SessionLimits {
  /** Responses at or above this size with 2+ events are split when the watcher asked for it. */
  readonly fragmentBytes: number;
  /** A stream whose consumer leaves more than this buffered has its watchers canceled. */
  readonly backlogBytesMax: number;
  /** Watchers one stream may hold at once (--max-watchers-per-stream; Infinity: no limit, as etcd). */
  readonly maxWatchers: number;
}

interface Entry {
  readonly id: bigint;
  readonly watcher: Watcher;
  readonly prevKv: boolean;
  readonly fragment: boolean;
}

const EMPTY_KEY = Buffer.from([0]);
/** etcd puts the whole gRPC error text of a failed auth check into cancel_reason. */
const AUTH_CANCEL_REASONS: Partial<Record<ErrorCode, string>> = {
  invalidAuthToken: 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token',
  userEmpty: 'rpc error: code = InvalidArgument desc = etcdserver: user name is empty',
  permissionDenied: 'rpc error: code = PermissionDenied desc = etcdserver: permission denied',
  authOldRevision: 'rpc error: code = InvalidArgument desc = etcdserver: revision of auth store is old',
};

/** Whether the stream's caller may watch [key, rangeEnd): undefined, or why not. */
export type WatchAuthorizer = (key: Uint8Array, rangeEnd: Uint8Array) => ErrorCode | undefined;

export class CoreWatchSession implements WatchSession, WatchSink {
  private readonly byId = new Map<bigint, Entry>();
  private readonly byWatcher = new Map<Watcher, Entry>();
  private nextId = 0n;
  private closed = false;

  constructor(
    private readonly hub: WatchHub,
    private readonly header: (rev: number) => ResponseHeader,
    private readonly out: WatchOutput,
    private readonly authorize: WatchAuthorizer,
    private readonly limits: SessionLimits,
  ) {
    hub.streams++;
  }

  request(req: WatchRequest): void {
    if (this.closed) return;
    const u = req.requestUnion;
    switch (u?.$case) {
      case 'createRequest':
        return this.create(u.value);
      case 'cancelRequest': {
        const e = this.byId.get(u.value.watchId);
        if (e === undefined) return;
        this.drop(e);
        this.send({ ...blank(this.header(this.hub.revision)), watchId: e.id, canceled: true });
        return;
      }
      case 'progressRequest':
        this.send({ ...blank(this.header(this.hub.revision)), watchId: -1n });
        return;
      case undefined:
        return;
    }
  }

  private create(c: WatchCreateRequest): void {
    const rev = this.hub.revision;
    const key = c.key.length === 0 ? EMPTY_KEY : c.key;
    const fail = (reason: string): void => {
      this.send({ ...blank(this.header(rev)), watchId: -1n, created: true, canceled: true, cancelReason: reason });
    };
    const denied = this.authorize(c.key, c.rangeEnd);
    if (denied !== undefined) return fail(AUTH_CANCEL_REASONS[denied] ?? denied);
    if (c.rangeEnd.length !== 0 && !(c.rangeEnd.length === 1 && c.rangeEnd[0] === 0) && Buffer.compare(key, c.rangeEnd) >= 0) {
      return fail('mvcc: watcher range is empty');
    }
    if (this.byId.size >= this.limits.maxWatchers) {
      return fail(`etcdserver: too many watchers on this stream (--max-watchers-per-stream=${this.limits.maxWatchers}): cancel one or open another stream`);
    }
    let id = c.watchId;
    if (id === 0n) {
      while (this.byId.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.byId.has(id)) {
      return fail('mvcc: duplicate watch ID provided on the WatchStream');
    }
    this.send({ ...blank(this.header(rev)), watchId: id, created: true });
    const watcher = this.hub.add({
      range: keyRange(key, c.rangeEnd),
      startRev: Number(c.startRevision),
      prevKv: c.prevKv,
      noPut: c.filters.includes(Filter.NOPUT),
      noDelete: c.filters.includes(Filter.NODELETE),
      progressNotify: c.progressNotify,
    }, this);
    const e: Entry = { id, watcher, prevKv: c.prevKv, fragment: c.fragment };
    this.byId.set(id, e);
    this.byWatcher.set(watcher, e);
  }

  private drop(e: Entry): void {
    this.hub.remove(e.watcher);
    this.byId.delete(e.id);
    this.byWatcher.delete(e.watcher);
  }

  close(): void {
    if (!this.closed) this.hub.streams--;
    this.closed = true;
    for (const e of [...this.byId.values()]) this.drop(e);
  }

  // --- WatchSink: called by the hub ---

  events(w: Watcher, changes: readonly Change[], headerRev: number): void {
    const e = this.byWatcher.get(w);
    if (e === undefined) return;
    const events: Event[] = changes.map((c) => ({
      type: c.type === 'put' ? EventType.PUT : EventType.DELETE,
      kv: c.type === 'put' ? toKeyValue(c.kv) : { ...toKeyValue(c.kv), createRevision: 0n, version: 0n },
      prevKv: e.prevKv && c.prev !== undefined ? toKeyValue(c.prev) : undefined,
    }));
    const resp: WatchResponse = { ...blank(this.header(headerRev)), watchId: e.id, events };
    if (e.fragment) this.sendFragments(resp);
    else this.send(resp);
  }

  compacted(w: Watcher, compactRev: number): void {
    const e = this.byWatcher.get(w);
    if (e === undefined) return;
    this.byId.delete(e.id);
    this.byWatcher.delete(w);
    this.send({ ...blank(this.header(0)), watchId: e.id, canceled: true, compactRevision: BigInt(compactRev) });
  }

  progress(w: Watcher, rev: number): void {
    const e = this.byWatcher.get(w);
    if (e !== undefined) this.send({ ...blank(this.header(rev)), watchId: e.id });
  }

  /** etcd's sendFragments: pack events until a part reaches the limit. */
  private sendFragments(resp: WatchResponse): void {
    const sizes = resp.events.map((ev) => Event.encode(ev).finish().length + 6);
    const total = sizes.reduce((a, b) => a + b, 64);
    if (total < this.limits.fragmentBytes || resp.events.length < 2) return this.send(resp);
    let i = 0;
    while (i < resp.events.length) {
      const part: Event[] = [];
      let size = 64;
      for (; i < resp.events.length; i++) {
        if (part.length > 0 && size + sizes[i]! >= this.limits.fragmentBytes) break;
        part.push(resp.events[i]!);
        size += sizes[i]!;
      }
      this.send({ ...resp, events: part, fragment: i < resp.events.length });
    }
  }

  private send(resp: WatchResponse): void {
    if (this.closed) return;
    this.out.send(resp);
    if (this.out.backlogBytes() > this.limits.backlogBytesMax) this.overflow();
  }

  /** The consumer is not reading: cancel every watcher of the stream rather than buffer more. */
  private overflow(): void {
    const entries = [...this.byId.values()];
    for (const e of entries) this.drop(e);
    const reason = `etcdserver: watch stream too slow: more than ${this.limits.backlogBytesMax} bytes of responses unread`;
    for (const e of entries) {
      this.out.send({ ...blank(this.header(this.hub.revision)), watchId: e.id, canceled: true, cancelReason: reason });
    }
  }
}

function blank(header: ResponseHeader): WatchResponse {
  return { header, watchId: 0n, created: false, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events: [] };
}
