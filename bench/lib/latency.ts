// Latency samples in microseconds, kept as a growable Float64Array (a few hundred thousand samples
// per run at most: sorting them once at the end is cheaper and more exact than a histogram).

export class LatencyRecorder {
  private buf: Float64Array;
  private n = 0;

  constructor(initial = 1 << 16) {
    this.buf = new Float64Array(initial);
  }

  /** Records one latency given in nanoseconds (a process.hrtime.bigint() difference). */
  recordNs(ns: bigint): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = Number(ns) / 1000;
  }

  get count(): number {
    return this.n;
  }

  /** The samples (a copy of the used part, transferable to another thread). */
  take(): Float64Array {
    return this.buf.slice(0, this.n);
  }
}

export interface LatencySummary {
  count: number;
  /** all in milliseconds */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Summary of microsecond samples from one or more recorders; percentiles by nearest rank. */
export function summarize(parts: Float64Array[]): LatencySummary {
  const total = parts.reduce((s, p) => s + p.length, 0);
  const all = new Float64Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  all.sort();
  const at = (q: number): number => {
    if (total === 0) return NaN;
    const rank = Math.min(total - 1, Math.max(0, Math.ceil(q * total) - 1));
    return all[rank]! / 1000;
  };
  let sum = 0;
  for (let i = 0; i < total; i++) sum += all[i]!;
  return {
    count: total,
    mean: total === 0 ? NaN : sum / total / 1000,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: total === 0 ? NaN : all[total - 1]! / 1000,
  };
}
