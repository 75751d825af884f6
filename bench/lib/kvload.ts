// The KV load generator: N grpc-js channels, exactly `inflight` request loops (each loop has one
// request outstanding at a time), a warmup and a measured window on the process.hrtime.bigint()
// clock. It runs either in the calling thread or in worker threads (see ./kvload-worker.ts); the
// same code does both, so the two placements differ only in where the event loop is.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { PutRequest, PutResponse, RangeRequest, RangeResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { combineResults, makeWindow, runLoops, runWorkers, scheduleHooks, split } from './workers.js';

export interface KvWorkload {
  /** row name in the report */
  name: string;
  op: 'put' | 'range';
  /** keys bench/00000 .. bench/<keyCount-1>, all preloaded */
  keyCount: number;
  /** put: bytes per value */
  valueSize: number;
  /** range: keys per request (1 = a single-key Get; n = [bench/i, bench/i+n) with a random i) */
  rangeWidth: number;
  /** range: serializable (false = linearizable, etcd's default) */
  serializable: boolean;
  /**
   * Auth token sent with every request (gRPC metadata `token`; the gateway's `Authorization`
   * header), from an Authenticate the bench made beforehand; none when auth is off.
   */
  token?: string;
}

export interface LoadOptions {
  endpoint: string;
  workload: KvWorkload;
  /** request loops in this thread */
  inflight: number;
  /** gRPC channels (each its own HTTP/2 connection) in this thread */
  clients: number;
  seed: number;
}

/** hrtime.bigint() instants (the clock is process-wide, so threads share it). */
export interface LoadWindow {
  warmupEnd: bigint;
  end: bigint;
}

export interface LoadResult {
  /** requests that completed OK inside [warmupEnd, end] */
  ops: number;
  errors: number;
  firstError?: string;
  /** microseconds, one per counted op */
  latencies: Float64Array;
  /** event-loop utilization of the generating thread over the measured window (1 = saturated) */
  elu: number;
}

export const KEY_PREFIX = 'bench/';

export function benchKey(i: number): Buffer {
  return Buffer.from(KEY_PREFIX + String(i).padStart(5, '0'));
}

export function makeClients(endpoint: string, n: number): grpc.Client[] {
  const out: grpc.Client[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
        // A private subchannel pool: otherwise grpc-js shares one connection between all clients
        // to the same target with the same options.
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        // Without this the connection and stream receive windows stay at HTTP/2's 64 KiB and
        // Range responses of ~30 KB wait for WINDOW_UPDATEs (Go clients grow theirs by BDP probing).
        'grpc-node.flow_control_window': 8 * 1024 * 1024,
      }),
    );
  }
  return out;
}

export async function connectClients(clients: grpc.Client[], timeoutMs = 10_000): Promise<void> {
  await Promise.all(
    clients.map(
      (c) => new Promise<void>((res, rej) => c.waitForReady(Date.now() + timeoutMs, (err) => (err ? rej(err) : res()))),
    ),
  );
}

export function closeClients(clients: grpc.Client[]): void {
  for (const c of clients) c.close();
}

const identity = (b: Buffer): Buffer => b;

/**
 * One unary call with a pre-encoded request and the raw response bytes: the generator must not
 * spend its (scarce, see README) CPU on protobuf encoding and decoding. Responses are decoded and
 * checked on a sample only (see VALIDATE_EVERY).
 */
function call(c: grpc.Client, path: string, req: Buffer, token?: string): Promise<Buffer> {
  const cb = (res: (b: Buffer) => void, rej: (e: Error) => void) => (err: grpc.ServiceError | null, r?: Buffer): void => (err ? rej(err) : res(r!));
  if (token === undefined) return new Promise((res, rej) => c.makeUnaryRequest(path, identity, identity, req, cb(res, rej)));
  // A fresh Metadata per call: grpc-js may add to the one it is given.
  const md = new grpc.Metadata();
  md.set('token', token);
  return new Promise((res, rej) => c.makeUnaryRequest(path, identity, identity, req, md, cb(res, rej)));
}


/** Issues one request; resolves with an error text for a wrong answer (when `check` is set). */
type Issue = (c: grpc.Client, r: () => number, check: boolean) => Promise<string | undefined>;

/** Builds the per-request function over prebuilt, pre-encoded requests. */
function issuer(w: KvWorkload): Issue {
  const keys = Array.from({ length: w.keyCount + w.rangeWidth }, (_, i) => benchKey(i));
  if (w.op === 'put') {
    const value = randomBytes(w.valueSize);
    const reqs = keys.slice(0, w.keyCount).map((key) => Buffer.from(PutRequest.encode(PutRequest.fromPartial({ key, value })).finish()));
    return async (c, r, check) => {
      const raw = await call(c, PUT, reqs[r() % w.keyCount]!, w.token);
      if (!check) return undefined;
      const resp = PutResponse.decode(raw);
      return resp.header !== undefined && resp.header.revision > 0n ? undefined : 'put: no revision in header';
    };
  }
  const starts = w.keyCount - w.rangeWidth + 1;
  const reqs = Array.from({ length: starts }, (_, i) =>
    Buffer.from(
      RangeRequest.encode(
        RangeRequest.fromPartial({
          key: keys[i]!,
          rangeEnd: w.rangeWidth === 1 ? Buffer.alloc(0) : keys[i + w.rangeWidth]!,
          serializable: w.serializable,
        }),
      ).finish(),
    ),
  );
  const want = BigInt(w.rangeWidth);
  return async (c, r, check) => {
    const raw = await call(c, RANGE, reqs[r() % starts]!, w.token);
    if (!check) return undefined;
    const resp = RangeResponse.decode(raw);
    return resp.kvs.length === w.rangeWidth && resp.count === want && resp.kvs[0]!.value.length === w.valueSize
      ? undefined
      : `range: got ${resp.kvs.length} kvs (count ${resp.count}), want ${w.rangeWidth}`;
  };
}

const PUT = '/etcdserverpb.KV/Put';
const RANGE = '/etcdserverpb.KV/Range';

/** Runs the loops over already connected clients until window.end; in-flight requests then drain. */
export function runLoad(opts: LoadOptions, clients: grpc.Client[], window: LoadWindow): Promise<LoadResult> {
  const issue = issuer(opts.workload);
  return runLoops('load generator', opts.inflight, opts.seed, window, (i, r, check) => issue(clients[i % clients.length]!, r, check));
}

export async function preload(endpoint: string, keyCount: number, valueSize: number, inflight = 64): Promise<void> {
  const clients = makeClients(endpoint, 1);
  try {
    await connectClients(clients);
    const value = randomBytes(valueSize);
    let next = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (next < keyCount) {
          const i = next++;
          await call(clients[0]!, PUT, Buffer.from(PutRequest.encode(PutRequest.fromPartial({ key: benchKey(i), value })).finish()));
        }
      }),
    );
  } finally {
    closeClients(clients);
  }
}

// ---------------------------------------------------------------------------------------------
// placement: this thread or worker threads

export interface GeneratorPlan {
  endpoint: string;
  workload: KvWorkload;
  /** total requests in flight (split evenly over threads) */
  inflight: number;
  /** total gRPC channels (split evenly over threads, at least one each) */
  clients: number;
  /** 0 = generate in this thread; n >= 1 = n worker threads */
  threads: number;
  warmupMs: number;
  measureMs: number;
  /** called (in this thread) at the start and at the end of the measured window */
  onWindowStart?: () => void | Promise<void>;
  onWindowEnd?: () => void | Promise<void>;
}

export interface GeneratorResult {
  ops: number;
  errors: number;
  firstError?: string;
  latencies: Float64Array[];
  /** per generating thread */
  elu: number[];
  /** seconds actually measured */
  seconds: number;
}

interface Share {
  inflight: number;
  clients: number;
}


export async function runGenerator(plan: GeneratorPlan): Promise<GeneratorResult> {
  const nThreads = Math.max(1, Math.min(plan.threads, plan.inflight));
  const inflights = split(plan.inflight, nThreads);
  const clientsPer = split(Math.max(plan.clients, nThreads), nThreads);
  const shares: Share[] = inflights.map((inflight, i) => ({ inflight, clients: clientsPer[i]! }));
  const mkWindow = (): LoadWindow => makeWindow(plan.warmupMs, plan.measureMs);

  let results: LoadResult[];
  let window: LoadWindow;
  if (plan.threads === 0) {
    const share = shares[0]!;
    const clients = makeClients(plan.endpoint, share.clients);
    try {
      await connectClients(clients);
      window = mkWindow();
      const hooks = scheduleHooks(plan, window);
      const r = await runLoad({ endpoint: plan.endpoint, workload: plan.workload, ...share, seed: 1 }, clients, window);
      await hooks;
      results = [r];
    } finally {
      closeClients(clients);
    }
  } else {
    const workers = shares.map(
      (share, i) =>
        new Worker(new URL('./kvload-worker.js', import.meta.url), {
          workerData: { endpoint: plan.endpoint, workload: plan.workload, ...share, seed: i + 1 } satisfies LoadOptions,
        }),
    );
    ({ results, window } = await runWorkers(workers, mkWindow, (w) => scheduleHooks(plan, w)));
  }
  return combineResults(results, plan.measureMs);
}
