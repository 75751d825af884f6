// What the leader knows of one follower: how far its log matches (match), what to send next
// (next), and how: probe (one append at a time until a match is found), replicate (optimistic
// pipeline, bounded by the in-flight window), snapshot (waiting for an install to land).
import { invariant } from './assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight appends, each remembered by its last index. */
export class Inflights {
  private readonly lastIndexes: number[] = [];

  constructor(readonly max: number) {
    invariant(max > 0, 'inflight window must be positive');
  }

  add(lastIndex: number): void {
    invariant(!this.full(), 'inflights: add to a full window');
    this.lastIndexes.push(lastIndex);
  }

  /** Frees every append whose last index is <= to. */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && this.lastIndexes[n]! <= to) n++;
    this.lastIndexes.splice(0, n);
  }

  /** The newest in-flight append's last index, if any. */
  last(): number | undefined {
    return this.lastIndexes[this.lastIndexes.length - 1];
  }

  /** The newest in-flight append (not sent yet) grew to end at lastIndex: it is still one append. */
  extendLast(lastIndex: number): void {
    const n = this.lastIndexes.length;
    invariant(n > 0 && this.lastIndexes[n - 1]! <= lastIndex, 'inflights: extend a missing or later append');
    this.lastIndexes[n - 1] = lastIndex;
  }

  freeFirstOne(): void {
    this.lastIndexes.shift();
  }

  full(): boolean {
    return this.lastIndexes.length >= this.max;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  state: ProgressState = 'probe';
  /** Probe: an append is out; wait for its answer (or a heartbeat answer) before the next. */
  probeSent = false;
  pendingSnapshot = 0;
  /** Ticks since the snapshot was sent: a lost snapshot falls back to probing after a timeout. */
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(public match: number, public next: number, maxInflight: number, public isLearner: boolean) {
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append was acknowledged up to n: returns whether match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** An append was rejected at `rejected`; `matchHint` bounds where to probe next. */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false; // stale
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // stale
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Records an append of entries up to lastIndex (probe: pauses until answered). */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * The newest append to this replicating follower, not sent yet, took more entries up to
   * lastIndex: what is next moves past them; it still takes one in-flight slot.
   */
  grewLastAppend(lastIndex: number): void {
    invariant(this.state === 'replicate', 'grew an append outside replicate');
    this.next = lastIndex + 1;
    this.inflights.extendLast(lastIndex);
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  describe(): string {
    return `${this.state} match=${this.match} next=${this.next}${this.isLearner ? ' learner' : ''}${this.state === 'snapshot' ? ` pending=${this.pendingSnapshot}` : ''} inflight=${this.inflights.count()}`;
  }
}
