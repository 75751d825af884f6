// Leases as etcd's lessor keeps them: granted TTL, the keys attached, and an expiry time that
// only the leader tracks (after a restart every lease gets its full TTL again, as in etcd).
import type { Clock } from '../../util/clock.js';

export interface Lease {
  readonly id: bigint;
  readonly ttl: number;
  expiryMs: number;
  /** Attached keys as binary strings. */
  readonly keys: Set<string>;
}

export const MAX_LEASE_TTL = 9_000_000_000;

export class Lessor {
  private readonly leases = new Map<bigint, Lease>();

  constructor(private readonly clock: Clock, readonly minTTL: number) {}

  /** Forgets every lease (a snapshot from the leader replaces them). */
  clear(): void {
    this.leases.clear();
  }

  get(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  has(id: bigint): boolean {
    return this.leases.has(id);
  }

  /** The TTL a grant of `ttl` seconds gets: raised to the minimum. */
  effectiveTTL(ttl: number): number {
    return Math.max(ttl, this.minTTL);
  }

  grant(id: bigint, ttl: number): Lease {
    const lease: Lease = { id, ttl, expiryMs: this.clock.nowMs() + ttl * 1000, keys: new Set() };
    this.leases.set(id, lease);
    return lease;
  }

  /** Removes the lease; returns its attached keys (the caller deletes them). */
  revoke(id: bigint): string[] {
    const lease = this.leases.get(id);
    if (lease === undefined) return [];
    this.leases.delete(id);
    return [...lease.keys].sort();
  }

  attach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.add(key);
  }

  detach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.delete(key);
  }

  /** Renews the lease to its full TTL; returns the TTL, or 0 if the lease does not exist. */
  renew(id: bigint): number {
    const lease = this.leases.get(id);
    if (lease === undefined || lease.expiryMs <= this.clock.nowMs()) return 0;
    lease.expiryMs = this.clock.nowMs() + lease.ttl * 1000;
    return lease.ttl;
  }

  /**
   * A member that just became leader: renewals went to the old leader, so every lease restarts
   * its full TTL (plus `extendMs`, etcd's election-timeout grace) from now, as etcd's Promote.
   */
  promote(extendMs: number): void {
    const now = this.clock.nowMs();
    for (const l of this.leases.values()) l.expiryMs = now + l.ttl * 1000 + extendMs;
  }

  /** Remaining whole seconds, truncated as etcd does; -1 for an unknown lease. */
  remaining(id: bigint): number {
    const lease = this.leases.get(id);
    if (lease === undefined) return -1;
    return Math.max(0, Math.trunc((lease.expiryMs - this.clock.nowMs()) / 1000));
  }

  /** Lease IDs by expiry time, soonest first, as etcd lists them. */
  ids(): bigint[] {
    return [...this.leases.values()].sort((a, b) => a.expiryMs - b.expiryMs).map((l) => l.id);
  }

  /** Leases whose time is up, at most `max` of them, oldest expiry first. */
  expired(max: number): bigint[] {
    const now = this.clock.nowMs();
    const out: Lease[] = [];
    for (const l of this.leases.values()) if (l.expiryMs <= now) out.push(l);
    out.sort((a, b) => a.expiryMs - b.expiryMs);
    return out.slice(0, max).map((l) => l.id);
  }
}
