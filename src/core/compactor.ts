// Auto compaction (--auto-compaction-mode / --auto-compaction-retention) with etcd 3.4's two
// compactors (etcdserver/api/v3compactor), driven by the Clock so tests can run them by hand.
// Each compaction is an ordinary Compact request: it goes through raft like a client's.
import { EtcdError } from '../backend/errors.js';
import type { Clock } from '../util/clock.js';

export type AutoCompaction =
  /** Keep about `retentionMs` of history. */
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  /** Keep the last `retention` revisions, checked every `checkIntervalMs` (etcd: 5 minutes). */
  | { readonly mode: 'revision'; readonly retention: number; readonly checkIntervalMs: number };

export interface CompactorDeps {
  readonly clock: Clock;
  currentRev(): number;
  /** Compacts at rev through raft; an EtcdError 'compacted' counts as done (as etcd's ErrCompacted). */
  compact(rev: number): Promise<void>;
  /** Only a leader compacts (etcd pauses the compactor on followers). */
  isLeader(): boolean;
  onError?(rev: number, err: unknown): void;
}

const HOUR_MS = 3_600_000;

/** Starts the compactor; returns its stop function. */
export function startCompactor(cfg: AutoCompaction, deps: CompactorDeps): () => void {
  let stopped = false;
  let cancel: () => void = () => undefined;
  let wake: () => void = () => undefined;
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    wake = resolve;
    cancel = deps.clock.after(ms, resolve);
  });
  /** true when compacted (or already compacted past rev). */
  const compact = async (rev: number): Promise<boolean> => {
    try {
      await deps.compact(rev);
      return true;
    } catch (e) {
      if (e instanceof EtcdError && e.code === 'compacted') return true;
      deps.onError?.(rev, e);
      return false;
    }
  };
  void (cfg.mode === 'periodic' ? periodic(cfg.retentionMs) : revision(cfg.retention, cfg.checkIntervalMs));
  return () => {
    stopped = true;
    cancel();
    wake();
  };

  /**
   * etcd 3.4's periodic compactor: samples the revision every tenth of min(retention, 1h), first
   * compacts once `retention` has passed since start, at the revision sampled `retention` ago,
   * then again every min(retention, 1h), each time at the oldest revision still in the window.
   */
  async function periodic(periodMs: number): Promise<void> {
    const compactEvery = Math.min(periodMs, HOUR_MS);
    const sampleEvery = compactEvery / 10;
    const window = Math.floor(periodMs / sampleEvery) + 1;
    const revs: number[] = [];
    let lastSuccess = deps.clock.nowMs();
    let wait = periodMs;
    for (;;) {
      revs.push(deps.currentRev());
      if (revs.length > window) revs.shift();
      await sleep(sampleEvery);
      if (stopped) return;
      if (!deps.isLeader() || deps.clock.nowMs() - lastSuccess < wait) continue;
      wait = compactEvery;
      if (await compact(revs[0]!)) lastSuccess = deps.clock.nowMs();
    }
  }

  /** etcd 3.4's revision compactor: every check, compact at current - retention if that moved. */
  async function revision(retention: number, checkMs: number): Promise<void> {
    let prev = 0;
    for (;;) {
      await sleep(checkMs);
      if (stopped) return;
      if (!deps.isLeader()) continue;
      const rev = deps.currentRev() - retention;
      if (rev <= 0 || rev === prev) continue;
      if (await compact(rev)) prev = rev;
    }
  }
}
