// The HTTP load generator: undici Pools (keep-alive, pipelining 1), exactly `inflight` request
// loops (each with one request outstanding), a warmup and a measured window on the
// process.hrtime.bigint() clock. The requests are the v3 JSON gateway's (pre-encoded JSON bodies
// with base64 keys/values, below) or the v2 keys API's (./v2load.ts), chosen by the workload.
// Like ./kvload.ts it runs in the calling thread or in worker threads (./httpload-worker.ts).
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { benchKey, type GeneratorPlan, type GeneratorResult, type KvWorkload, type LoadResult, type LoadWindow } from './kvload.js';
import { isV2, v2Issuer, warmV2, type V2Workload } from './v2load.js';
import { combineResults, makeWindow, runLoops, runWorkers, scheduleHooks, split } from './workers.js';

/** A workload is plain data (it is posted to the worker threads); its requests are built there. */
export type HttpWorkload = KvWorkload | V2Workload;

export interface HttpLoadOptions {
  /** http://127.0.0.1:PORT */
  url: string;
  workload: HttpWorkload;
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

/** The request headers of a gateway workload: JSON, plus the raw token as etcd's gateway reads it. */
const headersFor = (token: string | undefined): Record<string, string> => (token === undefined ? HEADERS : { ...HEADERS, authorization: token });

/** POST path with a JSON body; resolves with the response text, rejects on a non-200 status. */
export async function postJson(pool: Pool, path: string, body: string | Buffer, headers: Record<string, string> = HEADERS): Promise<string> {
  const r = await pool.request({ path, method: 'POST', body, headers });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${path}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

type Issue = (pool: Pool, r: () => number, check: boolean) => Promise<string | undefined>;

const b64 = (b: Buffer): string => b.toString('base64');

interface RangeJson {
  header?: { revision?: string };
  kvs?: Array<{ value?: string }>;
  count?: string;
}

function issuer(w: KvWorkload): Issue {
  const headers = headersFor(w.token);
  const keys = Array.from({ length: w.keyCount + w.rangeWidth }, (_, i) => b64(benchKey(i)));
  if (w.op === 'put') {
    const value = b64(randomBytes(w.valueSize));
    const bodies = keys.slice(0, w.keyCount).map((k) => Buffer.from(JSON.stringify({ key: k, value })));
    return async (pool, r, check) => {
      const text = await postJson(pool, '/v3/kv/put', bodies[r() % w.keyCount]!, headers);
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
    const text = await postJson(pool, '/v3/kv/range', bodies[r() % starts]!, headers);
    if (!check) return undefined;
    const resp = JSON.parse(text) as RangeJson;
    const kvs = resp.kvs ?? [];
    return kvs.length === w.rangeWidth && resp.count === String(w.rangeWidth) && kvs[0]?.value?.length === wantValueB64
      ? undefined
      : `range: got ${kvs.length} kvs (count ${resp.count}), want ${w.rangeWidth}`;
  };
}

/** Opens every connection of the pool (one cheap request of the workload's API per loop, all at once). */
export async function warmConnections(pool: Pool, n: number, w: HttpWorkload): Promise<void> {
  if (isV2(w)) return warmV2(pool, n, w.authorization);
  const body = JSON.stringify({ key: b64(Buffer.from('bench/warm')) });
  await Promise.all(Array.from({ length: n }, () => postJson(pool, '/v3/kv/range', body, headersFor(w.token))));
}

export function runHttpLoad(opts: HttpLoadOptions, pool: Pool, window: LoadWindow): Promise<LoadResult> {
  const w = opts.workload;
  const issue = isV2(w) ? v2Issuer(w) : issuer(w);
  return runLoops('http load generator', opts.inflight, opts.seed, window, (_i, r, check) => issue(pool, r, check));
}

export type HttpGeneratorPlan = Omit<GeneratorPlan, 'endpoint' | 'clients' | 'workload'> & { url: string; workload: HttpWorkload };

/** Same contract as kvload's runGenerator, over HTTP: 0 threads = here, n = n worker threads. */
export async function runHttpGenerator(plan: HttpGeneratorPlan): Promise<GeneratorResult> {
  const nThreads = Math.max(1, Math.min(plan.threads, plan.inflight));
  const inflights = split(plan.inflight, nThreads);
  const mkWindow = (): LoadWindow => makeWindow(plan.warmupMs, plan.measureMs);
  let results: LoadResult[];
  if (plan.threads === 0) {
    const inflight = inflights[0]!;
    const pool = makePool(plan.url, inflight);
    try {
      await warmConnections(pool, inflight, plan.workload);
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
