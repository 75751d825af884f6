// What each KV request needs permission for, as etcd 3.4's authApplierV3 and checkTxnAuth:
// Range and Txn compares READ on their interval; Put WRITE on its key (+READ with prev_kv, +WRITE
// on every key of its lease); DeleteRange WRITE (+READ with prev_kv); a lease revoke WRITE on
// each key of the lease. Nested txns are checked op by op too.
import type { DeleteRangeRequest, PutRequest, RequestOp, TxnRequest } from '../../gen/etcdserverpb/rpc.js';
import type { AuthInfo, AuthStore } from './store.js';

/** The keys attached to a lease (latin1-encoded, as the lessor holds them). */
export type LeaseKeys = (lease: bigint) => Iterable<string>;

const NONE = Buffer.alloc(0);

function checkLeaseKeys(auth: AuthStore, info: AuthInfo | null, lease: bigint, leaseKeys: LeaseKeys): void {
  for (const k of leaseKeys(lease)) auth.checkKeys(info, 'write', Buffer.from(k, 'latin1'), NONE);
}

export function checkPutAuth(auth: AuthStore, info: AuthInfo | null, r: PutRequest, leaseKeys: LeaseKeys): void {
  auth.checkKeys(info, 'write', r.key, NONE);
  if (r.prevKv) auth.checkKeys(info, 'read', r.key, NONE);
  if (r.lease !== 0n) checkLeaseKeys(auth, info, r.lease, leaseKeys);
}

export function checkDeleteAuth(auth: AuthStore, info: AuthInfo | null, r: DeleteRangeRequest): void {
  if (r.prevKv) auth.checkKeys(info, 'read', r.key, r.rangeEnd);
  auth.checkKeys(info, 'write', r.key, r.rangeEnd);
}

function checkOps(auth: AuthStore, info: AuthInfo | null, ops: readonly RequestOp[], leaseKeys: LeaseKeys): void {
  for (const op of ops) {
    const r = op.request;
    switch (r?.$case) {
      case 'requestRange': auth.checkKeys(info, 'read', r.value.key, r.value.rangeEnd); break;
      case 'requestPut': checkPutAuth(auth, info, r.value, leaseKeys); break;
      case 'requestDeleteRange': checkDeleteAuth(auth, info, r.value); break;
      case 'requestTxn': checkTxnAuth(auth, info, r.value, leaseKeys); break;
      case undefined: break;
    }
  }
}

export function checkTxnAuth(auth: AuthStore, info: AuthInfo | null, t: TxnRequest, leaseKeys: LeaseKeys): void {
  for (const c of t.compare) auth.checkKeys(info, 'read', c.key, c.rangeEnd);
  checkOps(auth, info, t.success, leaseKeys);
  checkOps(auth, info, t.failure, leaseKeys);
}

/** LeaseRevoke deletes the lease's keys: the caller needs WRITE on each (a lease without keys
 * needs nothing, not even a user: etcd 3.4 revokes it for anyone). */
export function checkLeaseRevokeAuth(auth: AuthStore, info: AuthInfo | null, lease: bigint, leaseKeys: LeaseKeys): void {
  checkLeaseKeys(auth, info, lease, leaseKeys);
}
