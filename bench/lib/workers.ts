// Running a load in worker threads and summing their results: one place for both generators
// (gRPC in kvload.ts, HTTP in httpload.ts).
import type { Worker } from 'node:worker_threads';
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
