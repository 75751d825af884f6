// The read-only view raft has of durable state. Writing is the caller's job (MemoryStorage in
// tests, the WAL-backed storage later): raft reads what was persisted, never writes it.
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/** Why a term or a range of entries could not be read. */
export type StorageGap = 'compacted' | 'unavailable';

export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi); lo >= firstIndex() or 'compacted'; hi <= lastIndex() + 1. */
  entries(lo: number, hi: number): readonly Entry[] | 'compacted';
  /** The term of entry i, for i in [firstIndex() - 1, lastIndex()]. */
  term(i: number): number | StorageGap;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}
