// etcd's client-side concurrency recipes (clientv3/concurrency), run server-side for the Lock
// and Election services exactly as etcd's v3lock/v3election servers run them.
import type { RecipeBackend } from './backend.js';
import {
  Compare_CompareResult, Compare_CompareTarget, RangeRequest, RangeRequest_SortOrder, RangeRequest_SortTarget,
  type ResponseHeader, type TxnResponse,
} from '../gen/etcdserverpb/rpc.js';
import type { KeyValue } from '../gen/mvccpb/kv.js';
import { prefixEnd } from '../util/bytes.js';
import { watchStream } from './watch-until.js';

/** "<prefix><lease id in lowercase hex>", as Go's fmt %x prints an int64. */
export function sessionKey(prefix: Buffer, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

/** A txn: if key was never created, put (value, lease) and read the first creator; else read key. */
export async function createIfAbsent(backend: RecipeBackend, key: Buffer, value: Buffer, lease: bigint, ownerPrefix?: Buffer): Promise<TxnResponse> {
  const get = (k: Buffer, first: boolean) => ({
    request: {
      $case: 'requestRange' as const,
      value: RangeRequest.fromPartial(first
        ? { key: k, rangeEnd: prefixEnd(k), sortOrder: RangeRequest_SortOrder.ASCEND, sortTarget: RangeRequest_SortTarget.CREATE, limit: 1n }
        : { key: k }),
    },
  });
  return backend.txn({
    compare: [{ key, rangeEnd: Buffer.alloc(0), target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, targetUnion: { $case: 'createRevision', value: 0n } }],
    success: [
      { request: { $case: 'requestPut', value: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false } } },
      ...(ownerPrefix ? [get(ownerPrefix, true)] : []),
    ],
    failure: [get(key, false), ...(ownerPrefix ? [get(ownerPrefix, true)] : [])],
  });
}

/** etcd's waitDeletes: wait until no key under prefix has create_revision <= maxCreateRev. */
export async function waitDeletes(backend: RecipeBackend, prefix: Buffer, maxCreateRev: bigint, signal: AbortSignal): Promise<ResponseHeader | undefined> {
  for (;;) {
    const resp = await backend.range(RangeRequest.fromPartial({
      key: prefix, rangeEnd: prefixEnd(prefix), maxCreateRevision: maxCreateRev,
      sortOrder: RangeRequest_SortOrder.DESCEND, sortTarget: RangeRequest_SortTarget.CREATE, limit: 1n,
    }));
    const last = resp.kvs[0];
    if (last === undefined) return resp.header;
    await waitDelete(backend, last.key, resp.header!.revision, signal);
  }
}

async function waitDelete(backend: RecipeBackend, key: Buffer, rev: bigint, signal: AbortSignal): Promise<void> {
  for await (const resp of watchStream(backend, { key, startRevision: rev }, signal)) {
    if (resp.events.some((ev) => ev.type === 1)) return;
  }
}

/** The first key created under prefix (the lock holder / election leader), with the header. */
export async function firstCreated(backend: RecipeBackend, prefix: Buffer): Promise<{ header: ResponseHeader | undefined; kv: KeyValue | undefined }> {
  const resp = await backend.range(RangeRequest.fromPartial({
    key: prefix, rangeEnd: prefixEnd(prefix), sortOrder: RangeRequest_SortOrder.ASCEND, sortTarget: RangeRequest_SortTarget.CREATE, limit: 1n,
  }));
  return { header: resp.header, kv: resp.kvs[0] };
}
