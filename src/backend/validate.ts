// etcd's request checks that run before anything is proposed (etcd's v3rpc/key.go), shared by
// every backend that answers for itself.
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../gen/etcdserverpb/rpc.js';
import { EtcdError } from './errors.js';

export function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw new EtcdError('emptyKey');
}

export function checkPut(r: PutRequest): void {
  if (r.key.length === 0) throw new EtcdError('emptyKey');
  if (r.ignoreValue && r.value.length !== 0) throw new EtcdError('valueProvided');
  if (r.ignoreLease && r.lease !== 0n) throw new EtcdError('leaseProvided');
}

export function checkDelete(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw new EtcdError('emptyKey');
}

export function checkTxn(r: TxnRequest, maxTxnOps: number): void {
  checkTxnOps(r, maxTxnOps);
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

function checkTxnOps(r: TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps) throw new EtcdError('tooManyOps');
  for (const c of r.compare) if (c.key.length === 0) throw new EtcdError('emptyKey');
  for (const op of r.success) checkOp(op, maxTxnOps - opc);
  for (const op of r.failure) checkOp(op, maxTxnOps - opc);
}

function checkOp(op: RequestOp, maxTxnOps: number): void {
  const r = op.request;
  switch (r?.$case) {
    case 'requestRange': return checkRange(r.value);
    case 'requestPut': return checkPut(r.value);
    case 'requestDeleteRange': return checkDelete(r.value);
    case 'requestTxn': return checkTxnOps(r.value, maxTxnOps);
    default: throw new EtcdError('keyNotFound');
  }
}

/** A half-open interval of binary strings; end "" means unbounded, as in etcd's adt package. */
interface Interval {
  readonly begin: string;
  readonly end: string;
}

function lessAffine(a: string, b: string): boolean {
  if (a.length === 0) return false;
  if (b.length === 0) return true;
  return a < b;
}

function covers(iv: Interval, k: string): boolean {
  return !lessAffine(k, iv.begin) && lessAffine(k, iv.end);
}

/**
 * etcd's duplicate check: no key may be put twice, or put inside a range deleted, at one level
 * of a txn branch (nested txns included). Returns this level's puts and deletes.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.request?.$case !== 'requestDeleteRange') continue;
    const d = op.request.value;
    const key = d.key.toString('latin1');
    dels.push({ begin: key, end: d.rangeEnd.length !== 0 ? d.rangeEnd.toString('latin1') : key + '\0' });
  }
  const deleted = (k: string): boolean => dels.some((iv) => covers(iv, k));
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.request?.$case !== 'requestTxn') continue;
    const then = checkIntervals(op.request.value.success);
    const other = checkIntervals(op.request.value.failure);
    for (const k of then.puts) {
      if (puts.has(k) || deleted(k)) throw new EtcdError('duplicateKey');
      puts.add(k);
    }
    for (const k of other.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || deleted(k)) throw new EtcdError('duplicateKey');
      puts.add(k);
    }
    dels.push(...then.dels, ...other.dels);
  }
  for (const op of ops) {
    if (op.request?.$case !== 'requestPut') continue;
    const k = op.request.value.key.toString('latin1');
    if (puts.has(k) || deleted(k)) throw new EtcdError('duplicateKey');
    puts.add(k);
  }
  return { puts, dels };
}
