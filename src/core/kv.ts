// The KV operations of the embedded core over the MVCC store, as etcd's applier runs them:
// Range (shared by reads and txns), Put, DeleteRange and Txn with compares.
import { EtcdError } from '../backend/errors.js';
import {
  Compare_CompareResult as CmpResult, Compare_CompareTarget as CmpTarget, RangeRequest_SortOrder as SortOrder,
  RangeRequest_SortTarget as SortTarget,
  type Compare, type DeleteRangeRequest, type DeleteRangeResponse, type PutRequest, type PutResponse, type RangeRequest,
  type RangeResponse, type RequestOp, type ResponseHeader, type ResponseOp, type TxnRequest, type TxnResponse,
} from '../gen/etcdserverpb/rpc.js';
import type { KeyValue } from '../gen/mvccpb/kv.js';
import { EMPTY, keyRange, toBin } from '../util/bytes.js';
import type { Lessor } from './lease/lessor.js';
import type { KV } from './mvcc/record.js';
import type { MvccStore, WriteTxn } from './mvcc/store.js';

export function toKeyValue(kv: KV, keysOnly = false): KeyValue {
  return {
    key: kv.key,
    createRevision: BigInt(kv.createRev),
    modRevision: BigInt(kv.modRev),
    version: BigInt(kv.version),
    value: keysOnly ? EMPTY : kv.value,
    lease: kv.lease,
  };
}

export function revHeader(rev: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision: BigInt(rev), raftTerm: 0n };
}

const sortKey: Record<number, (kv: KV) => number | Buffer> = {
  [SortTarget.KEY]: (kv) => kv.key,
  [SortTarget.VERSION]: (kv) => kv.version,
  [SortTarget.CREATE]: (kv) => kv.createRev,
  [SortTarget.MOD]: (kv) => kv.modRev,
  [SortTarget.VALUE]: (kv) => kv.value,
};

function cmpSortKeys(a: number | Buffer, b: number | Buffer): number {
  if (typeof a === 'number') return a - (b as number);
  return Buffer.compare(a, b as Buffer);
}

/**
 * etcd 3.4's Range: `readRev` is the revision the reader stands at (the current one, or inside a
 * txn its read revision). Filters and sorting fetch the whole range; plain limits do not.
 */
export function rangeOp(store: MvccStore, r: RangeRequest, readRev: number): RangeResponse {
  const rev = store.resolveRev(Number(r.revision), readRev);
  const limit = Number(r.limit);
  const minMod = Number(r.minModRevision);
  const maxMod = Number(r.maxModRevision);
  const minCreate = Number(r.minCreateRevision);
  const maxCreate = Number(r.maxCreateRevision);
  const fetchAll = r.sortOrder !== SortOrder.NONE || minMod !== 0 || maxMod !== 0 || minCreate !== 0 || maxCreate !== 0;
  const fetchLimit = fetchAll || limit <= 0 ? 0 : limit + 1;
  const res = store.range(keyRange(r.key, r.rangeEnd), rev, fetchLimit, r.countOnly);
  let kvs = res.kvs;
  if (maxMod !== 0) kvs = kvs.filter((kv) => kv.modRev <= maxMod);
  if (minMod !== 0) kvs = kvs.filter((kv) => kv.modRev >= minMod);
  if (maxCreate !== 0) kvs = kvs.filter((kv) => kv.createRev <= maxCreate);
  if (minCreate !== 0) kvs = kvs.filter((kv) => kv.createRev >= minCreate);
  let order = r.sortOrder as number;
  if (r.sortTarget !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  const by = sortKey[r.sortTarget];
  if (by !== undefined && (order === SortOrder.ASCEND || order === SortOrder.DESCEND)) {
    const sign = order === SortOrder.ASCEND ? 1 : -1;
    kvs = kvs === res.kvs ? [...kvs] : kvs;
    kvs.sort((a, b) => sign * cmpSortKeys(by(a), by(b)));
  }
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  return {
    header: revHeader(readRev),
    kvs: kvs.map((kv) => toKeyValue(kv, r.keysOnly)),
    more,
    count: BigInt(res.count),
  };
}

/** Put inside a write txn; lease existence and ignore_* were checked before anything ran. */
function putOp(store: MvccStore, txn: WriteTxn, p: PutRequest): PutResponse {
  const k = toBin(p.key);
  const cur = store.get(k, txn.readRev);
  if ((p.ignoreValue || p.ignoreLease) && cur === undefined) throw new EtcdError('keyNotFound');
  const value = p.ignoreValue ? cur!.value : p.value;
  const lease = p.ignoreLease ? cur!.lease : p.lease;
  txn.put(k, value, lease);
  return {
    header: revHeader(txn.readRev),
    prevKv: p.prevKv && cur !== undefined ? toKeyValue(cur) : undefined,
  };
}

function deleteOp(txn: WriteTxn, d: DeleteRangeRequest): DeleteRangeResponse {
  const deleted = txn.deleteRange(keyRange(d.key, d.rangeEnd));
  return {
    header: revHeader(txn.readRev),
    deleted: BigInt(deleted.length),
    prevKvs: d.prevKv ? deleted.map((kv) => toKeyValue(kv)) : [],
  };
}

function compareOne(c: Compare, kv: KV | undefined): boolean {
  let result = 0;
  const u = c.targetUnion;
  switch (c.target) {
    case CmpTarget.VALUE:
      result = Buffer.compare(kv?.value ?? EMPTY, u?.$case === 'value' ? u.value : EMPTY);
      break;
    case CmpTarget.CREATE:
      result = cmpBig(kv?.createRev ?? 0, u?.$case === 'createRevision' ? u.value : 0n);
      break;
    case CmpTarget.MOD:
      result = cmpBig(kv?.modRev ?? 0, u?.$case === 'modRevision' ? u.value : 0n);
      break;
    case CmpTarget.VERSION:
      result = cmpBig(kv?.version ?? 0, u?.$case === 'version' ? u.value : 0n);
      break;
    case CmpTarget.LEASE:
      result = cmpBig(kv?.lease ?? 0n, u?.$case === 'lease' ? u.value : 0n);
      break;
  }
  switch (c.result) {
    case CmpResult.EQUAL: return result === 0;
    case CmpResult.NOT_EQUAL: return result !== 0;
    case CmpResult.GREATER: return result > 0;
    case CmpResult.LESS: return result < 0;
    default: return true;
  }
}

/** Exact for any mix: JS orders a number against a bigint by value (no BigInt made per compare). */
function cmpBig(a: number | bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** etcd's applyCompare: every existing key in the range must satisfy it; VALUE on none fails. */
function compare(store: MvccStore, c: Compare): boolean {
  if (c.rangeEnd.length === 0) {
    // One key (most compares): its current value, without a range result (counted as a range,
    // as etcd's etcd_mvcc_range_total counts a compare's).
    store.counts.ranges++;
    const kv = store.get(toBin(c.key), store.currentRev);
    return kv === undefined && c.target === CmpTarget.VALUE ? false : compareOne(c, kv);
  }
  const { kvs } = store.range(keyRange(c.key, c.rangeEnd), store.currentRev, 0, false);
  if (kvs.length === 0) return c.target === CmpTarget.VALUE ? false : compareOne(c, undefined);
  return kvs.every((kv) => compareOne(c, kv));
}

/** The branch every (nested) txn takes, in pre-order, decided against the pre-txn state. */
function txnPath(store: MvccStore, t: TxnRequest, path: boolean[] = []): boolean[] {
  const ok = t.compare.every((c) => compare(store, c));
  path.push(ok);
  for (const op of ok ? t.success : t.failure) {
    if (op.request?.$case === 'requestTxn') txnPath(store, op.request.value, path);
  }
  return path;
}

function isReadOnly(t: TxnRequest): boolean {
  const ro = (ops: readonly RequestOp[]): boolean => ops.every((op) => {
    const r = op.request;
    if (r?.$case === 'requestTxn') return isReadOnly(r.value);
    return r?.$case === 'requestRange';
  });
  return ro(t.success) && ro(t.failure);
}

/** etcd's checkRequests over the branches that will run: puts (lease, ignore_*) and ranges. */
function checkBranch(store: MvccStore, lessor: Lessor, t: TxnRequest, path: readonly boolean[], at: { i: number }, puts: boolean): void {
  const ops = path[at.i++] ? t.success : t.failure;
  for (const op of ops) {
    const r = op.request;
    if (r?.$case === 'requestTxn') {
      checkBranch(store, lessor, r.value, path, at, puts);
    } else if (r?.$case === 'requestPut' && puts) {
      const p = r.value;
      if ((p.ignoreValue || p.ignoreLease) && store.get(toBin(p.key), store.currentRev) === undefined) {
        throw new EtcdError('keyNotFound');
      }
      if (p.lease !== 0n && !lessor.has(p.lease)) throw new EtcdError('leaseNotFound');
    } else if (r?.$case === 'requestRange' && !puts) {
      const rev = Number(r.value.revision);
      if (rev === 0) continue;
      if (rev > store.currentRev) throw new EtcdError('futureRev');
      if (rev < store.compactRev) throw new EtcdError('compacted');
    }
  }
}

function runBranch(store: MvccStore, txn: WriteTxn, t: TxnRequest, path: readonly boolean[], at: { i: number }, nested: boolean): TxnResponse {
  const succeeded = path[at.i++]!;
  const responses: ResponseOp[] = [];
  for (const op of succeeded ? t.success : t.failure) {
    const r = op.request;
    switch (r?.$case) {
      case 'requestRange':
        responses.push({ response: { $case: 'responseRange', value: rangeOp(store, r.value, txn.readRev) } });
        break;
      case 'requestPut':
        responses.push({ response: { $case: 'responsePut', value: putOp(store, txn, r.value) } });
        break;
      case 'requestDeleteRange':
        responses.push({ response: { $case: 'responseDeleteRange', value: deleteOp(txn, r.value) } });
        break;
      case 'requestTxn':
        responses.push({ response: { $case: 'responseTxn', value: runBranch(store, txn, r.value, path, at, true) } });
        break;
      default:
        throw new EtcdError('keyNotFound');
    }
  }
  const header = nested ? { clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n } : revHeader(0);
  return { header, succeeded, responses };
}

/** A whole txn: decide the branches, check them, then run them in one write txn. */
export function txnOp(store: MvccStore, lessor: Lessor, txn: WriteTxn, t: TxnRequest): TxnResponse {
  store.counts.txns++;
  const path = txnPath(store, t);
  if (!isReadOnly(t)) checkBranch(store, lessor, t, path, { i: 0 }, true);
  checkBranch(store, lessor, t, path, { i: 0 }, false);
  const resp = runBranch(store, txn, t, path, { i: 0 }, false);
  resp.header = revHeader(txn.readRev);
  return resp;
}

export { putOp, deleteOp };
