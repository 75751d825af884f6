// Time enters the cores only through this interface, so tests can drive it by hand.

export interface Clock {
  nowMs(): number;
  /** Runs fn after ms; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  nowMs: () => performance.timeOrigin + performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};
