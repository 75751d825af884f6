// An ordered set of binary-string keys: a list of sorted chunks (a one-level B-tree).
// Insert and delete cost O(log n + chunk size); ordered scans from any key are cheap.

const CHUNK_MAX = 512;

export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Index of the chunk that holds (or would hold) k. */
  private chunkFor(k: string): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (chunks[mid]![0]! <= k) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  insert(k: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([k]);
      this.count = 1;
      return;
    }
    const ci = this.chunkFor(k);
    const chunk = this.chunks[ci]!;
    const i = lowerBound(chunk, k);
    if (chunk[i] === k) return;
    chunk.splice(i, 0, k);
    this.count++;
    if (chunk.length > CHUNK_MAX) {
      this.chunks.splice(ci + 1, 0, chunk.splice(CHUNK_MAX >> 1));
    }
  }

  delete(k: string): boolean {
    if (this.chunks.length === 0) return false;
    const ci = this.chunkFor(k);
    const chunk = this.chunks[ci]!;
    const i = lowerBound(chunk, k);
    if (chunk[i] !== k) return false;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) this.chunks.splice(ci, 1);
    return true;
  }

  /** Keys in [from, end) in ascending order; end null = unbounded. */
  *range(from: string, end: string | null): Generator<string> {
    if (this.chunks.length === 0) return;
    let ci = this.chunkFor(from);
    let i = lowerBound(this.chunks[ci]!, from);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const chunk = this.chunks[ci]!;
      for (; i < chunk.length; i++) {
        const k = chunk[i]!;
        if (end !== null && k >= end) return;
        yield k;
      }
    }
  }
}

function lowerBound(a: readonly string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
