// The watch hub: every watcher of the embedded backend (gRPC streams, gateway streams, v2 long
// polls) subscribes here. Synced watchers get live changes as each revision becomes durable;
// unsynced ones (start revision in the past) catch up from storage in bounded chunks first.
import { inRange, toBin, type KeyRange } from '../../util/bytes.js';
import type { Change, MvccStore } from '../mvcc/store.js';
import { decodeRecord, type KV } from '../mvcc/record.js';
import type { MvccStorage } from '../mvcc/storage.js';

export interface WatcherOptions {
  readonly range: KeyRange;
  readonly startRev: number;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
}

export interface WatchSink {
  /** Events of one or more revisions; headerRev is the revision the response header carries. */
  events(w: Watcher, events: readonly Change[], headerRev: number): void;
  /** The watcher's start revision was compacted away; the hub has dropped it. */
  compacted(w: Watcher, compactRev: number): void;
  progress(w: Watcher, rev: number): void;
}

export class Watcher {
  /** The next revision this watcher needs. */
  nextRev: number;
  sentSinceProgress = false;
  constructor(readonly opts: WatcherOptions, readonly sink: WatchSink, nextRev: number) {
    this.nextRev = nextRev;
  }
}

/** Revisions read from storage per catch-up step (bounds the work done in one tick). */
const CATCHUP_REVS = 1000;

export class WatchHub {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private syncScheduled = false;
  /** Open watch streams (sessions) over this hub, for etcd_debugging_mvcc_watch_stream_total. */
  streams = 0;
  /** Newest revision whose changes are durable and delivered. */
  private rev: number;

  constructor(private readonly store: MvccStore, private readonly storage: MvccStorage) {
    this.rev = store.currentRev;
  }

  get revision(): number {
    return this.rev;
  }

  /** Watchers registered (synced and catching up). */
  get size(): number {
    let n = this.ranges.size + this.unsynced.size;
    for (const set of this.byKey.values()) n += set.size;
    return n;
  }

  add(opts: WatcherOptions, sink: WatchSink): Watcher {
    const start = opts.startRev > 0 ? opts.startRev : this.rev + 1;
    const w = new Watcher(opts, sink, start);
    if (start <= this.rev) {
      this.unsynced.add(w);
      this.scheduleSync();
    } else {
      this.addSynced(w);
    }
    return w;
  }

  remove(w: Watcher): void {
    this.unsynced.delete(w);
    this.ranges.delete(w);
    const k = w.opts.range;
    if (k.end === undefined) {
      const set = this.byKey.get(k.key);
      if (set !== undefined) {
        set.delete(w);
        if (set.size === 0) this.byKey.delete(k.key);
      }
    }
  }

  private addSynced(w: Watcher): void {
    const r = w.opts.range;
    if (r.end === undefined) {
      let set = this.byKey.get(r.key);
      if (set === undefined) this.byKey.set(r.key, (set = new Set()));
      set.add(w);
    } else {
      this.ranges.add(w);
    }
  }

  /**
   * The store was replaced by a newer snapshot: every watcher catches up from storage (the
   * revisions in between were never notified here).
   */
  restored(): void {
    for (const set of this.byKey.values()) for (const w of set) this.unsynced.add(w);
    for (const w of this.ranges) this.unsynced.add(w);
    this.byKey.clear();
    this.ranges.clear();
    this.rev = this.store.currentRev;
    this.scheduleSync();
  }

  /** Delivers the changes of one durable revision to the synced watchers. */
  notify(rev: number, changes: readonly Change[]): void {
    this.rev = rev;
    if (changes.length === 0 || (this.byKey.size === 0 && this.ranges.size === 0)) return;
    // Made only when a watcher wants a change: most writes match none of the watchers there are.
    let batches: Map<Watcher, Change[]> | undefined;
    for (const c of changes) {
      const k = toBin(c.kv.key);
      const set = this.byKey.get(k);
      if (set !== undefined) for (const w of set) batches = offer(batches, w, c, rev);
      for (const w of this.ranges) if (inRange(w.opts.range, k)) batches = offer(batches, w, c, rev);
    }
    if (batches === undefined) return;
    for (const [w, events] of batches) {
      w.nextRev = rev + 1;
      w.sentSinceProgress = true;
      w.sink.events(w, events, rev);
    }
  }

  /** Sends a progress notification to each synced progress_notify watcher idle since the last call. */
  progressTick(): void {
    const visit = (w: Watcher): void => {
      if (!w.opts.progressNotify) return;
      if (!w.sentSinceProgress) w.sink.progress(w, this.rev);
      w.sentSinceProgress = false;
    };
    for (const set of this.byKey.values()) for (const w of set) visit(w);
    for (const w of this.ranges) visit(w);
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      this.syncStep();
    });
  }

  /** One catch-up step: reads up to CATCHUP_REVS revisions for every unsynced watcher. */
  private syncStep(): void {
    if (this.unsynced.size === 0) return;
    const compactRev = this.store.compactRev;
    let from = Infinity;
    for (const w of this.unsynced) {
      if (w.nextRev < compactRev) {
        this.unsynced.delete(w);
        w.sink.compacted(w, compactRev);
        continue;
      }
      from = Math.min(from, w.nextRev);
    }
    if (this.unsynced.size === 0) return;
    const to = Math.min(from + CATCHUP_REVS, this.rev + 1);
    const batches = new Map<Watcher, Change[]>();
    for (const { main, value } of this.storage.scanRecords(from, to)) {
      const { kv, tombstone } = decodeRecord(value);
      const k = toBin(kv.key);
      let change: Change | undefined;
      for (const w of this.unsynced) {
        if (w.nextRev > main || !inRange(w.opts.range, k)) continue;
        change ??= this.historyChange(kv, tombstone, main);
        if (!wants(w, change)) continue;
        let b = batches.get(w);
        if (b === undefined) batches.set(w, (b = []));
        b.push(change);
      }
    }
    for (const w of [...this.unsynced]) {
      if (w.nextRev >= to) continue;
      const events = batches.get(w);
      w.nextRev = to;
      if (events !== undefined) {
        w.sentSinceProgress = true;
        w.sink.events(w, events, this.rev);
      }
      if (to > this.rev && this.unsynced.delete(w)) this.addSynced(w);
    }
    if (this.unsynced.size > 0) this.scheduleSync();
  }

  private historyChange(kv: KV, tombstone: boolean, main: number): Change {
    const prev = this.store.get(toBin(kv.key), main - 1);
    const copy: KV = { ...kv, key: Buffer.from(kv.key), value: Buffer.from(kv.value) };
    return { type: tombstone ? 'delete' : 'put', kv: copy, prev };
  }
}

function wants(w: Watcher, c: Change): boolean {
  return c.type === 'put' ? !w.opts.noPut : !w.opts.noDelete;
}

/** Adds change c to watcher w's batch when w wants it; returns the batches (made on first use). */
function offer(batches: Map<Watcher, Change[]> | undefined, w: Watcher, c: Change, rev: number): Map<Watcher, Change[]> | undefined {
  if (w.nextRev > rev || !wants(w, c)) return batches;
  const out = batches ?? new Map<Watcher, Change[]>();
  const b = out.get(w);
  if (b === undefined) out.set(w, [c]);
  else b.push(c);
  return out;
}
