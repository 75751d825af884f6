// Small builders of v3 txn compares and ops for the v2 translation.
import {
  Compare_CompareResult, Compare_CompareTarget, type Compare, type RangeRequest, type RequestOp,
} from '../gen/etcdserverpb/rpc.js';

const NONE = Buffer.alloc(0);

export interface RangeOptions {
  readonly limit?: number;
  readonly countOnly?: boolean;
  readonly revision?: number;
  readonly serializable?: boolean;
}

/**
 * A RangeRequest with every other field at its default, built as one literal: a v2 read makes
 * ~10 of them per request, and the generated fromPartial allocates two empty buffers per call
 * before copying the given fields over them.
 */
export function rangeRequest(key: Buffer, rangeEnd: Buffer = NONE, opts: RangeOptions = {}): RangeRequest {
  return {
    key, rangeEnd, limit: BigInt(opts.limit ?? 0), revision: BigInt(opts.revision ?? 0), sortOrder: 0, sortTarget: 0, serializable: opts.serializable ?? false,
    keysOnly: false, countOnly: opts.countOnly ?? false, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n,
  };
}

export function getOp(key: Buffer, rangeEnd: Buffer = NONE, opts: RangeOptions = {}): RequestOp {
  return { request: { $case: 'requestRange', value: rangeRequest(key, rangeEnd, opts) } };
}

export function putOp(key: Buffer, value: Buffer | string, lease = 0n): RequestOp {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  return { request: { $case: 'requestPut', value: { key, value: v, lease, prevKv: false, ignoreValue: false, ignoreLease: false } } };
}

export function deleteOp(key: Buffer, rangeEnd: Buffer = NONE): RequestOp {
  return { request: { $case: 'requestDeleteRange', value: { key, rangeEnd, prevKv: false } } };
}

/** mod_revision(key) == rev (0 = the key does not exist). */
export function modIs(key: Buffer, rev: bigint): Compare {
  return { key, rangeEnd: NONE, target: Compare_CompareTarget.MOD, result: Compare_CompareResult.EQUAL, targetUnion: { $case: 'modRevision', value: rev } };
}

/** The key exists (mod_revision > 0). */
export function exists(key: Buffer): Compare {
  return { key, rangeEnd: NONE, target: Compare_CompareTarget.MOD, result: Compare_CompareResult.GREATER, targetUnion: { $case: 'modRevision', value: 0n } };
}

/** A nested txn: its compares are decided on the state before the enclosing txn, like the outer ones. */
export function nestedTxnOp(compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): RequestOp {
  return { request: { $case: 'requestTxn', value: { compare, success, failure } } };
}

/** Every key in [key, rangeEnd) was last modified at or before rev (no key was added since). */
export function unchangedSince(key: Buffer, rangeEnd: Buffer, rev: number): Compare {
  return { key, rangeEnd, target: Compare_CompareTarget.MOD, result: Compare_CompareResult.LESS, targetUnion: { $case: 'modRevision', value: BigInt(rev + 1) } };
}
