// The v2 keys API over a V3Backend: get (with listings) and the writes of write.ts, each one txn.
import type { V3Backend } from '../backend/index.js';
import { V2Error } from './errors.js';
import { KeySchema } from './keys.js';
import { headerOf, nodeOf, type V2Header, type V2Result } from './node.js';
import { isRoot } from './path.js';
import { listDir, readPath, subtreeDepth, walkError } from './read.js';
import { expirationFor, leaseTtlFor, nowNs, timerExpires } from './ttl.js';
import { openWatch, type V2Watch, type WatchRequest } from './watch.js';
import { needsSubtree, planWrite, type NewTtl, type WriteRequest } from './write.js';

/** Retries of a write whose guarded txn lost a race; then 300 is returned. */
export const WRITE_ATTEMPTS_MAX = 32;

export interface GetRequest {
  readonly path: string;
  readonly recursive: boolean;
  /** Listings are always sorted (v2 leaves unsorted order unspecified). */
  readonly sorted: boolean;
}

export class V2Store {
  readonly keys: KeySchema;
  /** The sweeper's pending expiries (see keys.ts: directories and ttl < 2 s). */
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  constructor(readonly backend: V3Backend, prefix?: string) {
    this.keys = new KeySchema(prefix);
  }

  /** Stops the sweeper's timers (the leases stay as the backstop). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
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
    const s = await readPath(this.backend, this.keys, req.path);
    const err = walkError(s);
    if (err) throw err;
    const base = isRoot(req.path) ? { key: '/', dir: true, createdIndex: 0, modifiedIndex: 0 } : nodeOf(s.target)!;
    if (!base.dir) return { event: { action: 'get', node: base }, status: 200, header: s.header };
    const nodes = await listDir(this.backend, this.keys, req.path, s.header.index, req.recursive);
    const node = nodes.length > 0 ? { ...base, nodes } : base;
    return { event: { action: 'get', node }, status: 200, header: s.header };
  }

  async write(req: WriteRequest): Promise<V2Result> {
    const ttlS = 'ttl' in req ? req.ttl : undefined;
    // The expiration counts from the request's receipt (etcd: before consensus).
    const expiration = ttlS === undefined ? undefined : expirationFor(ttlS, nowNs());
    let ttl: NewTtl | undefined;
    let committed = false;
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

  /** A v2 watch (GET ?wait=true): see watch.ts. Throws V2Error 401 for a cleared waitIndex. */
  async watch(req: WatchRequest, signal: AbortSignal): Promise<V2Watch> {
    return openWatch(this.backend, this.keys, await this.header(), req, signal);
  }

  /** The current header (for answers that did not reach the store, e.g. validation errors). */
  async header(): Promise<V2Header> {
    const resp = await this.backend.txn({ compare: [], success: [], failure: [] });
    return headerOf(resp.header);
  }
}
