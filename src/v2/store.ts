// The v2 keys API over a V3Backend: get (with listings) and the writes of write.ts, each one txn.
import type { V3Backend } from '../backend/index.js';
import { rangeRequest } from './txn-ops.js';
import { V2Error } from './errors.js';
import { KeySchema } from './keys.js';
import { expirationOf, headerOf, nodeOf, type V2Event, type V2Header, type V2Result } from './node.js';
import { isRoot } from './path.js';
import { listDir, readPath, subtreeDepth, walkError } from './read.js';
import { expirationFor, leaseTtlFor, MIN_LEASE_TTL_S, nowNs, timerExpires } from './ttl.js';
import { StoreStats } from './stats.js';
import { checkWindow, compactedError, openWatch, type V2Watch, type WatchRequest } from './watch.js';
import { V2WatchHub, type SharedWatchObserver } from './watch-hub.js';
import { guessSet, needsSubtree, planWrite, type NewTtl, type WriteRequest } from './write.js';


/** Retries of a write whose guarded txn lost a race; then 300 is returned. */
export const WRITE_ATTEMPTS_MAX = 32;

export interface GetRequest {
  readonly path: string;
  readonly recursive: boolean;
  /** Listings are always sorted (v2 leaves unsorted order unspecified). */
  readonly sorted: boolean;
  /**
   * quorum=true: a linearizable read (through the leader's ReadIndex in a cluster). Without it a
   * v2 GET is answered from this member's own state, as etcd's v2 serves it.
   */
  readonly quorum?: boolean;
}

export class V2Store {
  readonly keys: KeySchema;
  /** The sweeper's pending expiries (see keys.ts: directories and ttl < 2 s). */
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly hub: V2WatchHub;
  /** Open watches not served by the hub (their start index predates its ring). */
  private ownWatches = 0;
  readonly stats = new StoreStats();
  constructor(readonly backend: V3Backend, prefix?: string, observer?: SharedWatchObserver) {
    this.keys = new KeySchema(prefix);
    this.hub = new V2WatchHub(backend, this.keys, undefined, observer);
  }

  /**
   * Opens the shared watch and re-arms the sweeper for the nodes that need it (written by an
   * earlier run of this process, whose timers died with it); resolves when both are done or have
   * failed. A refusal (gateway mode: cluster unreachable, or auth on upstream without --user)
   * does not stop the server: watches then fall back to their own backend watch, and the hub is
   * retried.
   */
  async start(): Promise<void> {
    await Promise.allSettled([this.hub.start(), this.rearmTimers()]);
  }

  /** Stops the sweeper's timers (the leases stay as the backstop) and the shared watch. */
  close(): void {
    this.closed = true;
    this.hub.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** `/v2/stats/store`'s JSON. */
  storeStatsJson(): string {
    return this.stats.toJson(this.hub.size + this.ownWatches, this.hub.expired);
  }

  /**
   * Schedules the sweeper for every stored TTL node it must expire (directories, and files whose
   * expiration comes before their lease's minimum TTL would): one paged scan of the v2 keyspace.
   */
  private async rearmTimers(): Promise<void> {
    const PAGE = 1000;
    const all = this.keys.allRange();
    const ttls = new Map<string, { lease: bigint; expiration: bigint }>();
    const dirs = new Set<string>();
    let key = all.key;
    for (;;) {
      const resp = await this.backend.range(rangeRequest(key, all.rangeEnd, { limit: PAGE }));
      for (const kv of resp.kvs) {
        const p = this.keys.parse(kv.key);
        if (p?.kind === 'dir') dirs.add(p.path);
        if (p?.kind === 'ttl') {
          const expiration = expirationOf({ path: p.path, ttl: kv });
          if (expiration !== undefined) ttls.set(p.path, { lease: kv.lease, expiration });
        }
      }
      const last = resp.kvs[resp.kvs.length - 1];
      if (!resp.more || !last) break;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
    const soon = nowNs() + BigInt(MIN_LEASE_TTL_S) * 1_000_000_000n;
    for (const [path, ttl] of ttls) if (dirs.has(path) || ttl.expiration < soon) this.schedule(path, ttl);
  }

  private async revoke(lease: bigint): Promise<void> {
    if (lease === 0n) return;
    await this.backend.leaseRevoke({ ID: lease }).catch(() => undefined);
  }

  /**
   * Grants the write's lease (before its txn; `dir`: the node written is a directory, whose lease
   * gets a grace period): undefined for a permanent node.
   */
  private async grant(ttlS: bigint, expiration: bigint | undefined, dir: boolean): Promise<NewTtl | undefined> {
    if (expiration === undefined) return undefined;
    const resp = await this.backend.leaseGrant({ ID: 0n, TTL: leaseTtlFor(ttlS, dir) });
    return { lease: resp.ID, expiration };
  }

  private schedule(path: string, ttl: NewTtl): void {
    if (this.closed) return;
    const ms = Math.max(0, Number((ttl.expiration - nowNs()) / 1_000_000n));
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.write({ kind: 'expire', path, lease: ttl.lease }).then(() => this.revoke(ttl.lease), () => undefined);
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  async get(req: GetRequest): Promise<V2Result> {
    try {
      const r = await this.doGet(req);
      this.stats.get(true);
      return r;
    } catch (e) {
      this.stats.get(false);
      throw e;
    }
  }

  private async doGet(req: GetRequest): Promise<V2Result> {
    const serializable = req.quorum !== true;
    const s = await readPath(this.backend, this.keys, req.path, 0, serializable);
    const err = walkError(s);
    if (err) throw err;
    const base = isRoot(req.path) ? { key: '/', dir: true, createdIndex: 0, modifiedIndex: 0 } : nodeOf(s.target)!;
    if (!base.dir) return { event: { action: 'get', node: base }, status: 200, header: s.header };
    const nodes = await listDir(this.backend, this.keys, req.path, s.header.index, req.recursive, serializable);
    const node = nodes.length > 0 ? { ...base, nodes } : base;
    return { event: { action: 'get', node }, status: 200, header: s.header };
  }

  async write(req: WriteRequest): Promise<V2Result> {
    try {
      const r = await this.doWrite(req);
      this.stats.write(req.kind, true);
      return r;
    } catch (e) {
      this.stats.write(req.kind, false);
      throw e;
    }
  }

  private async doWrite(req: WriteRequest): Promise<V2Result> {
    const ttlS = 'ttl' in req ? req.ttl : undefined;
    // The expiration counts from the request's receipt (etcd: before consensus).
    const expiration = ttlS === undefined ? undefined : expirationFor(ttlS, nowNs());
    let ttl: NewTtl | undefined;
    let committed = false;
    // The common set goes out as one txn with no read before it; when its guess about the path is
    // wrong, the plan below reads the path and writes what the path needs.
    const guess = guessSet(this.keys, req);
    if (guess) {
      const resp = await this.backend.txn({ compare: [...guess.compares], success: [...guess.ops], failure: [] });
      const header = headerOf(resp.header);
      if (resp.succeeded) {
        const { status, event } = guess.result(resp.responses);
        return { event: event(header.index), status, header };
      }
    }
    try {
      for (let attempt = 0; attempt < WRITE_ATTEMPTS_MAX; attempt++) {
        const s = await readPath(this.backend, this.keys, req.path);
        if (ttlS !== undefined && ttl === undefined) {
          const dir = ('dir' in req && req.dir) || (req.kind === 'update' && s.target.dir !== undefined);
          ttl = await this.grant(ttlS, expiration, dir);
        }
        const depth = needsSubtree(req, s.target) ? await subtreeDepth(this.backend, this.keys, req.path, s.header.index) : 0;
        const plan = planWrite(this.keys, req, s, { depth }, ttl);
        if (plan instanceof V2Error) throw plan;
        const resp = await this.backend.txn({ compare: [...plan.compares], success: [...plan.ops], failure: [] });
        if (!resp.succeeded) continue;
        committed = true;
        const header = headerOf(resp.header);
        // The node's previous lease now holds no key (the txn re-put or deleted them): drop it.
        const old = s.target.ttl?.lease ?? 0n;
        if (old !== 0n && old !== ttl?.lease && req.kind !== 'post') void this.revoke(old);
        const dir = plan.written?.dir ?? false;
        if (ttl && plan.written && ttlS !== undefined && timerExpires(ttlS, dir)) this.schedule(plan.written.path, ttl);
        return { event: plan.event(header.index), status: plan.status, header };
      }
      throw new V2Error(300, 'v2: too many concurrent changes, write not applied', 0);
    } finally {
      if (ttl && !committed) void this.revoke(ttl.lease);
    }
  }

  /**
   * A v2 watch (GET ?wait=true): served by the shared hub when its ring covers the start index,
   * else by a watch of its own (watch.ts). Throws V2Error 401 for a cleared waitIndex.
   */
  async watch(req: WatchRequest, signal: AbortSignal): Promise<V2Watch> {
    const header = await this.header();
    checkWindow(req, header);
    // A start index whose history compaction removed is refused like one older than the window.
    if (await this.compactedSince(req.waitIndex, header)) throw await compactedError(this.backend, this.keys, header, req);
    void this.hub.start().catch(() => undefined); // no-op once running; retries a refused start
    const shared = this.hub.subscribe(req, header, signal);
    if (shared) return shared;
    const own = await openWatch(this.backend, this.keys, header, req, signal);
    this.ownWatches++;
    const counted = async function* (this: V2Store): AsyncGenerator<V2Event> {
      try {
        yield* own.events;
      } finally {
        this.ownWatches--;
      }
    };
    return { header, events: counted.call(this) };
  }

  /** True when a watch from revision `from` (> 0) needs history that compaction removed. */
  private async compactedSince(from: number, header: V2Header): Promise<boolean> {
    if (from <= 0 || from > header.index) return false;
    // The event of revision `from` is read at `from - 1` (its prevNode).
    const at = Math.max(1, from - 1);
    return this.backend.range(rangeRequest(this.keys.eventKey(), undefined, { revision: at, countOnly: true })).then(() => false, () => true);
  }

  /** The current header (for answers that did not reach the store, e.g. validation errors). */
  async header(): Promise<V2Header> {
    const resp = await this.backend.txn({ compare: [], success: [], failure: [] });
    return headerOf(resp.header);
  }
}
