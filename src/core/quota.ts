// --quota-backend-bytes: what a write is charged against the backend quota, with etcd 3.4's
// numbers (etcdserver/quota.go), so the same writes hit NOSPACE at about the same size.
import type * as pb from '../gen/etcdserverpb/rpc.js';

/** etcd's default quota (--quota-backend-bytes 0): 2 GiB. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;
/** etcd's per-key and per-lease overheads added to a write's cost. */
const KV_OVERHEAD = 256;
const LEASE_OVERHEAD = 64;

/** The flag's value -> the quota in bytes: 0 is the default, a negative value disables it. */
export function quotaBytes(flag: number): number {
  if (flag < 0) return Infinity;
  return flag === 0 ? DEFAULT_QUOTA_BYTES : flag;
}

export function putCost(r: Pick<pb.PutRequest, 'key' | 'value'>): number {
  return KV_OVERHEAD + r.key.length + r.value.length;
}

/** A txn costs its more expensive branch's puts (nested txns cost nothing, as in etcd 3.4). */
export function txnCost(r: Pick<pb.TxnRequest, 'success' | 'failure'>): number {
  const branch = (ops: readonly pb.RequestOp[]): number =>
    ops.reduce((n, op) => n + (op.request?.$case === 'requestPut' ? putCost(op.request.value) : 0), 0);
  return Math.max(branch(r.success), branch(r.failure));
}

export const leaseGrantCost = LEASE_OVERHEAD;

/** Whether a write of `cost` bytes fits: etcd's `size + cost < quota`. */
export function fitsQuota(usedBytes: number, cost: number, quota: number): boolean {
  return usedBytes + cost < quota;
}
