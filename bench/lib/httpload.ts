// The v3 HTTP/JSON gateway load generator: undici Pools (keep-alive, pipelining 1), exactly
// `inflight` request loops (each with one request outstanding), pre-encoded JSON bodies with base64
// keys/values, a warmup and a measured window on the process.hrtime.bigint() clock. Like
// ./kvload.ts it runs in the calling thread or in worker threads (./httpload-worker.ts).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { benchKey, type GeneratorPlan, type GeneratorResult, type KvWorkload, type LoadResult, type LoadWindow } from './kvload.js';
import { LatencyRecorder } from './latency.js';
import { combineResults, runWorkers } from './workers.js';

export interface HttpLoadOptions {
  /** http://127.0.0.1:PORT */
  url: string;
  workload: KvWorkload;
  /** request loops (and keep-alive connections) in this thread */
  inflight: number;
  seed: number;
}

/** One connection per request loop: `inflight` keep-alive connections in all. */
export function makePool(url: string, connections: number): Pool {
  return new Pool(url, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
}

const HEADERS = { 'content-type': 'application/json' };

/** POST path with a JSON body; resolves with the response text, rejects on a non-200 status. */
export async function postJson(pool: Pool, path: string, body: string | Buffer): Promise<string> {
  const r = await pool.request({ path, method: 'POST', body, headers: HEADERS });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${path}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

const VALIDATE_EVERY = 32;

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

type Issue = (pool: Pool, r: () => number, check: boolean) => Promise<string | undefined>;

const b64 = (b: Buffer): string => b.toString('base64');

interface RangeJson {
  header?: { revision?: string };
  kvs?: Array<{ value?: string }>;
  count?: string;
}

function issuer(w: KvWorkload): Issue {
  const keys = Array.from({ length: w.keyCount + w.rangeWidth }, (_, i) => b64(benchKey(i)));
  if (w.op === 'put') {
    const value = b64(randomBytes(w.valueSize));
    const bodies = keys.slice(0, w.keyCount).map((k) => Buffer.from(JSON.stringify({ key: k, value })));
    return async (pool, r, check) => {
      const text = await postJson(pool, '/v3/kv/put', bodies[r() % w.keyCount]!);
      if (!check) return undefined;
      const resp = JSON.parse(text) as RangeJson;
      return Number(resp.header?.revision ?? 0) > 0 ? undefined : `put: no revision in ${text.slice(0, 200)}`;
    };
  }
  const starts = w.keyCount - w.rangeWidth + 1;
  const bodies = Array.from({ length: starts }, (_, i) =>
    Buffer.from(
      JSON.stringify({
        key: keys[i]!,
        ...(w.rangeWidth === 1 ? {} : { range_end: keys[i + w.rangeWidth]! }),
        ...(w.serializable ? { serializable: true } : {}),
      }),
    ),
  );
  const wantValueB64 = Math.ceil(w.valueSize / 3) * 4;
  return async (pool, r, check) => {
    const text = await postJson(pool, '/v3/kv/range', bodies[r() % starts]!);
    if (!check) return undefined;
    const resp = JSON.parse(text) as RangeJson;
    const kvs = resp.kvs ?? [];
    return kvs.length === w.rangeWidth && resp.count === String(w.rangeWidth) && kvs[0]?.value?.length === wantValueB64
      ? undefined
      : `range: got ${kvs.length} kvs (count ${resp.count}), want ${w.rangeWidth}`;
  };
}

/** Opens every connection of the pool (one cheap request per loop, all at once). */
export async function warmConnections(pool: Pool, n: number): Promise<void> {
  const body = JSON.stringify({ key: b64(Buffer.from('bench/warm')) });
  await Promise.all(Array.from({ length: n }, () => postJson(pool, '/v3/kv/range', body)));
}

export async function runHttpLoad(opts: HttpLoadOptions, pool: Pool, window: LoadWindow): Promise<LoadResult> {
  const issue = issuer(opts.workload);
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
  const captureElu = (): void => {
    if (eluStart !== undefined && Number.isNaN(elu)) elu = performance.eventLoopUtilization(eluStart).utilization;
  };
  const t2 = setTimeout(captureElu, ms(window.end));
  const loop = async (i: number): Promise<void> => {
    const r = rng(opts.seed * 7919 + i * 104729 + 1);
    for (let n = 0; ; n++) {
      const start = now();
      if (start >= window.end) return;
      let bad: string | undefined;
      try {
        bad = await issue(pool, r, n % VALIDATE_EVERY === 0);
      } catch (e) {
        bad = e instanceof Error ? e.message : String(e);
      }
      const done = now();
      if (bad !== undefined) {
        errors++;
        firstError ??= bad;
        if (errors > 1000 && ops === 0) throw new Error(`http load generator: ${errors} errors and no success; first: ${firstError}`);
        continue;
      }
      if (done >= window.warmupEnd && done <= window.end) {
        ops++;
        rec.recordNs(done - start);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.inflight }, (_, i) => loop(i)));
    captureElu();
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
  }
  const res: LoadResult = { ops, errors, latencies: rec.take(), elu };
  if (firstError !== undefined) res.firstError = firstError;
  return res;
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function scheduleHooks(plan: HttpGeneratorPlan, window: LoadWindow): Promise<void> {
  const ms = (t: bigint): number => Math.max(0, Number(t - process.hrtime.bigint()) / 1e6);
  const at = (t: bigint, f?: () => void | Promise<void>): Promise<void> =>
    new Promise((res, rej) => setTimeout(() => void Promise.resolve(f?.()).then(res, rej), ms(t)));
  return Promise.all([at(window.warmupEnd, plan.onWindowStart), at(window.end, plan.onWindowEnd)]).then(() => undefined);
}

export type HttpGeneratorPlan = Omit<GeneratorPlan, 'endpoint' | 'clients'> & { url: string };

/** Same contract as kvload's runGenerator, over HTTP: 0 threads = here, n = n worker threads. */
export async function runHttpGenerator(plan: HttpGeneratorPlan): Promise<GeneratorResult> {
  const nThreads = Math.max(1, Math.min(plan.threads, plan.inflight));
  const inflights = split(plan.inflight, nThreads);
  const mkWindow = (): LoadWindow => {
    const t0 = process.hrtime.bigint();
    const warmupEnd = t0 + BigInt(Math.round(plan.warmupMs * 1e6));
    return { warmupEnd, end: warmupEnd + BigInt(Math.round(plan.measureMs * 1e6)) };
  };
  let results: LoadResult[];
  if (plan.threads === 0) {
    const inflight = inflights[0]!;
    const pool = makePool(plan.url, inflight);
    try {
      await warmConnections(pool, inflight);
      const window = mkWindow();
      const hooks = scheduleHooks(plan, window);
      results = [await runHttpLoad({ url: plan.url, workload: plan.workload, inflight, seed: 1 }, pool, window)];
      await hooks;
    } finally {
      await pool.close();
    }
  } else {
    const workers = inflights.map(
      (inflight, i) =>
        new Worker(new URL('./httpload-worker.js', import.meta.url), {
          workerData: { url: plan.url, workload: plan.workload, inflight, seed: i + 1 } satisfies HttpLoadOptions,
        }),
    );
    results = (await runWorkers(workers, mkWindow, (window) => scheduleHooks(plan, window))).results;
  }
  return combineResults(results, plan.measureMs);
}
