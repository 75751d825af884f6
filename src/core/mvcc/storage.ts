import type { DecodedRecord } from './record.js';

// What the MVCC store needs from its storage: revision records, small metadata and lease records,
// readable at once (including staged, not yet committed writes) and committed in durable batches.

export type StorageOp =
  /** A revision's record, as its key-value (encoded by the storage when it writes it); null removes it. */
  | { readonly t: 'rec'; readonly main: number; readonly sub: number; readonly record: DecodedRecord | null }
  | { readonly t: 'meta'; readonly name: string; readonly value: Buffer | null }
  | { readonly t: 'lease'; readonly id: bigint; readonly value: Buffer | null };

export interface MvccStorage {
  getRecord(main: number, sub: number): Buffer | undefined;
  /** Records with fromMain <= main < toMain, in revision order. */
  scanRecords(fromMain: number, toMain: number): Iterable<{ main: number; sub: number; value: Buffer }>;
  getMeta(name: string): Buffer | undefined;
  scanLeases(): Iterable<{ id: bigint; value: Buffer }>;
  /** Makes an op visible to reads now; it becomes durable with the next commit that includes it. */
  stage(op: StorageOp): void;
  /** Writes every op staged so far in one durable transaction; resolves once it is on disk. */
  commit(): Promise<void>;
}
