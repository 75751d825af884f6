// The revision history of one user key, as etcd's keyIndex: a list of generations, each the
// revisions from a creation up to (and including) the tombstone that ended it. The last
// generation is the live one; it is empty while the key is deleted.

export interface Rev {
  readonly main: number;
  readonly sub: number;
}

interface Generation {
  /** Flat [main, sub, main, sub, ...] in ascending order. */
  revs: number[];
}

export class KeyIndex {
  private gens: Generation[] = [{ revs: [] }];

  /** The key's live revision history is empty and it has no older generations. */
  isEmpty(): boolean {
    return this.gens.length === 1 && this.gens[0]!.revs.length === 0;
  }

  put(main: number, sub: number): void {
    this.gens[this.gens.length - 1]!.revs.push(main, sub);
  }

  tombstone(main: number, sub: number): void {
    this.put(main, sub);
    this.gens.push({ revs: [] });
  }

  /** The revision holding the key's value as of revision `at`, or undefined if it did not exist. */
  findAt(at: number): Rev | undefined {
    for (let g = this.gens.length - 1; g >= 0; g--) {
      const revs = this.gens[g]!.revs;
      if (revs.length === 0 || revs[0]! > at) continue;
      // last index with main <= at
      let i = revs.length - 2;
      while (i > 0 && revs[i]! > at) i -= 2;
      const tombstoned = g < this.gens.length - 1;
      if (tombstoned && i === revs.length - 2) return undefined;
      return { main: revs[i]!, sub: revs[i + 1]! };
    }
    return undefined;
  }

  /**
   * Drops history older than `at` as etcd's compaction does: per generation, keep the newest
   * revision <= at unless it is the tombstone; drop generations that ended at or before `at`.
   * Calls drop() for every revision removed.
   */
  compact(at: number, drop: (main: number, sub: number) => void): void {
    const kept: Generation[] = [];
    const last = this.gens.length - 1;
    for (let g = 0; g <= last; g++) {
      const revs = this.gens[g]!.revs;
      if (g < last && revs[revs.length - 2]! <= at) {
        for (let i = 0; i < revs.length; i += 2) drop(revs[i]!, revs[i + 1]!);
        continue;
      }
      let keepFrom = 0;
      for (let i = 0; i < revs.length && revs[i]! <= at; i += 2) keepFrom = i;
      for (let i = 0; i < keepFrom; i += 2) drop(revs[i]!, revs[i + 1]!);
      kept.push({ revs: revs.slice(keepFrom) });
    }
    this.gens = kept.length > 0 ? kept : [{ revs: [] }];
  }
}
