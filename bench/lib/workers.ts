// What both load generators (gRPC in kvload.ts, HTTP in httpload.ts) share: the closed request
// loops, the measuring window and its hooks, running in worker threads, summing the results.
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { LatencyRecorder } from './latency.js';
import type { GeneratorResult, LoadResult, LoadWindow } from './kvload.js';

function waitMsg<T>(w: Worker, type: string): Promise<T> {
  return new Promise<T>((res, rej) => {
    const onMsg = (m: { type: string; error?: string }): void => {
      if (m.type === 'error') rej(new Error(m.error));
      else if (m.type === type) res(m as T);
      else return;
      w.off('message', onMsg);
    };
    w.on('message', onMsg);
    w.once('error', rej);
  });
}

/**
 * Waits until every worker is ready, starts them on one shared window, runs the hooks for that
 * window, and collects their results; the workers are terminated in every case.
 */
export async function runWorkers(
  workers: readonly Worker[], mkWindow: () => LoadWindow, hooks: (window: LoadWindow) => Promise<void>,
): Promise<{ results: LoadResult[]; window: LoadWindow }> {
  try {
    await Promise.all(workers.map((w) => waitMsg(w, 'ready')));
    const window = mkWindow();
    const done = workers.map((w) => waitMsg<{ result: LoadResult }>(w, 'done'));
    for (const w of workers) w.postMessage({ type: 'go', window });
    const running = hooks(window);
    const results = (await Promise.all(done)).map((m) => m.result);
    await running;
    return { results, window };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The generator's totals over its threads' results. */
export function combineResults(results: readonly LoadResult[], measureMs: number): GeneratorResult {
  const out: GeneratorResult = {
    ops: results.reduce((s, r) => s + r.ops, 0),
    errors: results.reduce((s, r) => s + r.errors, 0),
    latencies: results.map((r) => r.latencies),
    elu: results.map((r) => r.elu),
    seconds: measureMs / 1000,
  };
  const fe = results.find((r) => r.firstError !== undefined)?.firstError;
  if (fe !== undefined) out.firstError = fe;
  return out;
}

/** Every n-th response of a loop is decoded and checked (the first one always). */
const VALIDATE_EVERY = 32;

/** xorshift32: cheap, per-loop, deterministic. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** total split into parts as evenly as possible. */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** A warmup then a measured window, starting now, on process.hrtime.bigint(). */
export function makeWindow(warmupMs: number, measureMs: number): LoadWindow {
  const warmupEnd = process.hrtime.bigint() + BigInt(Math.round(warmupMs * 1e6));
  return { warmupEnd, end: warmupEnd + BigInt(Math.round(measureMs * 1e6)) };
}

export interface WindowHooks {
  onWindowStart?: () => void | Promise<void>;
  onWindowEnd?: () => void | Promise<void>;
}

/** Runs the hooks at the start and the end of the measured window (in this thread). */
export function scheduleHooks(hooks: WindowHooks, window: LoadWindow): Promise<void> {
  const ms = (t: bigint): number => Math.max(0, Number(t - process.hrtime.bigint()) / 1e6);
  const at = (t: bigint, f?: () => void | Promise<void>): Promise<void> =>
    new Promise((res, rej) => setTimeout(() => void Promise.resolve(f?.()).then(res, rej), ms(t)));
  return Promise.all([at(window.warmupEnd, hooks.onWindowStart), at(window.end, hooks.onWindowEnd)]).then(() => undefined);
}

/** Issues one request of loop `loop`; resolves with an error text for a wrong answer (when `check` is set). */
export type OneRequest = (loop: number, r: () => number, check: boolean) => Promise<string | undefined>;

/**
 * `inflight` closed loops, each one request at a time, until window.end; latencies are recorded
 * for requests that end inside the measured window. `name` labels a generator that only fails.
 */
export async function runLoops(name: string, inflight: number, seed: number, window: LoadWindow, one: OneRequest): Promise<LoadResult> {
  const rec = new LatencyRecorder();
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  let eluStart: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  let elu = NaN;
  const now = (): bigint => process.hrtime.bigint();
  const ms = (t: bigint): number => Math.max(0, Number(t - now()) / 1e6);
  const t1 = setTimeout(() => {
    eluStart = performance.eventLoopUtilization();
  }, ms(window.warmupEnd));
  // At the end of the window, or when the last loop stops if that comes first (a busy loop can
  // run its timers late, after every loop has already seen the end).
  const captureElu = (): void => {
    if (eluStart !== undefined && Number.isNaN(elu)) elu = performance.eventLoopUtilization(eluStart).utilization;
  };
  const t2 = setTimeout(captureElu, ms(window.end));
  const loop = async (i: number): Promise<void> => {
    const r = rng(seed * 7919 + i * 104729 + 1);
    for (let n = 0; ; n++) {
      const start = now();
      if (start >= window.end) return;
      let bad: string | undefined;
      try {
        bad = await one(i, r, n % VALIDATE_EVERY === 0);
      } catch (e) {
        bad = e instanceof Error ? e.message : String(e);
      }
      const done = now();
      if (bad !== undefined) {
        errors++;
        firstError ??= bad;
        if (errors > 1000 && ops === 0) throw new Error(`${name}: ${errors} errors and no success; first: ${firstError}`);
        continue;
      }
      if (done >= window.warmupEnd && done <= window.end) {
        ops++;
        rec.recordNs(done - start);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: inflight }, (_, i) => loop(i)));
    captureElu();
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
  }
  const res: LoadResult = { ops, errors, latencies: rec.take(), elu };
  if (firstError !== undefined) res.firstError = firstError;
  return res;
}
