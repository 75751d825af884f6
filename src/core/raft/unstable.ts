// The tail of the log not yet persisted: entries from `offset` on, or an incoming snapshot.
import { debugChecks, invariant } from './assert.js';
import type { Entry, Snapshot } from './types.js';

export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.meta.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot !== undefined && this.snapshot.meta.index === i ? this.snapshot.meta.term : undefined;
    }
    return this.entries[i - this.offset]?.term;
  }

  /** Entries up to (index, term) are durable: drop them, unless a conflicting append replaced them. */
  stableTo(index: number, term: number): void {
    if (this.maybeTerm(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.meta.index === index) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    // The entries already held are contiguous (this check, every time before): checking the new
    // ones, O(batch), keeps the whole tail contiguous. The full walk is for the tests only.
    for (let i = 1; i < ents.length; i++) invariant(ents[i]!.index === after + i, 'appended entries are not contiguous');
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces the whole unstable tail, and the persisted entries from `after` on.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = [...this.entries.slice(0, after - this.offset), ...ents];
    }
    if (debugChecks) invariant(this.entries.every((e, i) => e.index === this.offset + i), 'unstable entries are not contiguous');
  }

  /** Entries [lo, hi), all within the unstable tail. */
  slice(lo: number, hi: number): Entry[] {
    invariant(lo >= this.offset && hi <= this.offset + this.entries.length, () => `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
