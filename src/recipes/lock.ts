// The v3lock service's Lock/Unlock over any V3Backend, as etcd's lockServer runs clientv3's
// Mutex: key "<name>/<lease hex>", the oldest creator holds the lock, waiters watch their
// predecessor's deletion.
import type { RecipeBackend } from './backend.js';
import { EtcdError } from '../backend/errors.js';
import type { LockRequest, LockResponse, UnlockRequest, UnlockResponse } from '../gen/v3lockpb/v3lock.js';
import { createIfAbsent, sessionKey, waitDeletes } from './mutex.js';

/** Session TTL etcd's concurrency package grants when the request names no lease. */
export const DEFAULT_SESSION_TTL = 60n;

export async function sessionLease(backend: RecipeBackend, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  return (await backend.leaseGrant({ TTL: DEFAULT_SESSION_TTL, ID: 0n })).ID;
}

export async function lock(backend: RecipeBackend, req: LockRequest, signal: AbortSignal): Promise<LockResponse> {
  const lease = await sessionLease(backend, req.lease);
  const prefix = Buffer.concat([req.name, Buffer.from('/')]);
  const key = sessionKey(prefix, lease);
  const resp = await createIfAbsent(backend, key, Buffer.alloc(0), lease, prefix);
  const range = (i: number) => {
    const r = resp.responses[i]?.response;
    return r?.$case === 'responseRange' ? r.value : undefined;
  };
  let myRev = resp.header!.revision;
  if (!resp.succeeded) myRev = range(0)!.kvs[0]!.createRevision;
  const owner = range(1)?.kvs[0];
  if (owner === undefined || owner.createRevision === myRev) return { header: resp.header, key };
  try {
    const header = await waitDeletes(backend, prefix, myRev - 1n, signal);
    return { header, key };
  } catch (e) {
    // Leave no waiter key behind when the caller gives up.
    await backend.deleteRange({ key, rangeEnd: Buffer.alloc(0), prevKv: false }).catch(() => undefined);
    throw e;
  }
}

export async function unlock(backend: RecipeBackend, req: UnlockRequest): Promise<UnlockResponse> {
  if (req.key.length === 0) throw new EtcdError('emptyKey');
  const resp = await backend.deleteRange({ key: req.key, rangeEnd: Buffer.alloc(0), prevKv: false });
  return { header: resp.header };
}
