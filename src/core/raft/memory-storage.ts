// Storage kept in memory: the test double, and the shape a WAL-backed storage mirrors (append,
// setHardState, applySnapshot, createSnapshot, compact). Index 0 of `ents` is a dummy entry that
// holds the snapshot's index and term.
import { invariant } from './assert.js';
import type { Storage, StorageGap } from './storage.js';
import type { ConfState, Entry, HardState, NodeId, Snapshot } from './types.js';
import { NONE } from './types.js';

const EMPTY = new Uint8Array(0);

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, voters: [], learners: [] }, data: EMPTY };
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: EMPTY }];
  /** Data bytes of the entries held (the dummy entry holds none). */
  private bytes = 0;

  /**
   * A new cluster's storage: membership as a snapshot at index/1 (default 1), so joiners always
   * start from one; a state machine that already holds entries starts its log after them.
   */
  static bootstrap(voters: readonly NodeId[], learners: readonly NodeId[] = [], index = 1): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot({ meta: { index, term: 1, voters: [...voters], learners: [...learners] }, data: EMPTY });
    s.setHardState({ term: 1, vote: NONE, commit: index });
    return s;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: { voters: this.snap.meta.voters, learners: this.snap.meta.learners } };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  private get offset(): number {
    return this.ents[0]!.index;
  }

  entries(lo: number, hi: number): readonly Entry[] | 'compacted' {
    if (lo <= this.offset) return 'compacted';
    invariant(hi <= this.lastIndex() + 1, () => `entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    return this.ents.slice(lo - this.offset, hi - this.offset);
  }

  term(i: number): number | StorageGap {
    if (i < this.offset) return 'compacted';
    const e = this.ents[i - this.offset];
    return e === undefined ? 'unavailable' : e.term;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Data bytes of the entries held in memory. */
  retainedBytes(): number {
    return this.bytes;
  }

  /**
   * The lowest index at most `maxIndex` that compact() can take so that the entries left hold at
   * most `keepBytes` of data (or `maxIndex`, if that is not enough).
   */
  compactIndexKeeping(maxIndex: number, keepBytes: number): number {
    let bytes = this.bytes;
    let i = this.offset;
    while (bytes > keepBytes && i < maxIndex) {
      i++;
      bytes -= this.ents[i - this.offset]!.data.length;
    }
    return i;
  }

  /** Replaces everything with a snapshot received from the leader. */
  applySnapshot(s: Snapshot): void {
    invariant(s.meta.index >= this.snap.meta.index, 'applySnapshot: snapshot older than the current one');
    this.snap = s;
    this.ents = [{ term: s.meta.term, index: s.meta.index, type: 'normal', data: EMPTY }];
    this.bytes = 0;
  }

  /** Records the application's snapshot at index i (<= last index); entries stay until compact(). */
  createSnapshot(i: number, cs: ConfState, data: Uint8Array): Snapshot {
    invariant(i > this.snap.meta.index || this.snap.meta.index === 0, 'createSnapshot: out of date');
    invariant(i <= this.lastIndex(), 'createSnapshot: beyond last index');
    const term = this.term(i);
    invariant(typeof term === 'number', 'createSnapshot: index compacted');
    this.snap = { meta: { index: i, term, voters: [...cs.voters], learners: [...cs.learners] }, data };
    return this.snap;
  }

  /** Drops entries before `compactIndex` (which becomes the dummy entry); needs a snapshot at or after it. */
  compact(compactIndex: number): void {
    if (compactIndex <= this.offset) return;
    invariant(compactIndex <= this.lastIndex(), 'compact: beyond last index');
    invariant(compactIndex <= this.snap.meta.index, 'compact: no snapshot covers the compacted entries');
    const i = compactIndex - this.offset;
    for (let k = 1; k <= i; k++) this.bytes -= this.ents[k]!.data.length;
    const dummy = this.ents[i]!;
    this.ents = [{ term: dummy.term, index: dummy.index, type: 'normal', data: EMPTY }, ...this.ents.slice(i + 1)];
  }

  /** Appends entries, truncating any conflicting suffix. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const last = entries[entries.length - 1]!;
    if (last.index <= this.offset) return; // all compacted
    const fresh = first.index <= this.offset ? entries.slice(this.offset + 1 - first.index) : entries;
    const start = fresh[0]!.index;
    invariant(start <= this.lastIndex() + 1, () => `append: gap, last ${this.lastIndex()}, appending ${start}`);
    // In place: the log grows by small batches up to --snapshot-count entries, so copying it
    // on every append would be quadratic.
    for (let k = start - this.offset; k < this.ents.length; k++) this.bytes -= this.ents[k]!.data.length;
    this.ents.length = start - this.offset;
    for (const e of fresh) {
      this.ents.push(e);
      this.bytes += e.data.length;
    }
  }
}
