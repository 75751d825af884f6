// v2 TTL arithmetic: expirations are absolute wall-clock times in nanoseconds since the Unix epoch
// (what the ttl marker stores, keys.ts), printed as Go's time.RFC3339Nano in UTC.

/** The backend's minimum lease TTL (seconds): shorter v2 TTLs are expired by the store's timer. */
export const MIN_LEASE_TTL_S = 2;
/** Extra lease time of a directory's ttl marker, so that the store's sweeper normally wins. */
export const DIR_LEASE_GRACE_S = 2;

const INT64_MAX = 9223372036854775807n;
const NS_PER_S = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;

/** Wall-clock now in ns: Date.now()'s milliseconds plus a sub-millisecond part of the hrtime. */
export function nowNs(): bigint {
  return BigInt(Date.now()) * NS_PER_MS + (process.hrtime.bigint() % NS_PER_MS);
}

/**
 * The expiration of a node written now with ttl seconds; undefined = permanent (etcd: an expiration
 * past year 2262 overflows Go's nanosecond clock and silently yields a permanent node).
 */
export function expirationFor(ttl: bigint, now: bigint): bigint | undefined {
  const exp = now + ttl * NS_PER_S;
  return exp > INT64_MAX ? undefined : exp;
}

/** etcd's ttl field: remaining seconds, rounded up when positive (Go truncation when negative). */
export function ttlOf(exp: bigint, now: bigint): number {
  const left = exp - now;
  const whole = left / NS_PER_S;
  return Number(left > 0n && left % NS_PER_S !== 0n ? whole + 1n : whole);
}

/** Go's time.RFC3339Nano in UTC: 2026-11-28T17:19:22.43562407Z (trailing zeros trimmed). */
export function formatExpiration(exp: bigint): string {
  const ms = exp / NS_PER_MS;
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  const frac = String(((exp % NS_PER_S) + NS_PER_S) % NS_PER_S).padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac === '' ? '' : `.${frac}`}Z`;
}

/** The lease TTL backing a node with this v2 ttl (seconds). */
export function leaseTtlFor(ttl: bigint, dir: boolean): bigint {
  const base = ttl < BigInt(MIN_LEASE_TTL_S) ? BigInt(MIN_LEASE_TTL_S) : ttl;
  return dir ? base + BigInt(DIR_LEASE_GRACE_S) : base;
}

/** True when the store's timer (not the lease) expires the node. */
export function timerExpires(ttl: bigint, dir: boolean): boolean {
  return dir || ttl < BigInt(MIN_LEASE_TTL_S);
}
