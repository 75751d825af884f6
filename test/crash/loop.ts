// The crash loop, shared by test/crash/kill9.test.ts (a few kills in CI) and bench/crashloop.ts
// (`npm run bench -- crashloop`, 50 kills): our server as a child process on one data dir, a
// concurrent write load (puts, two-key txns, put+delete pairs on a known key set, every
// acknowledged write recorded with its revision), SIGKILL at a random moment, restart, check.
//
// After each restart (verify):
//   - every acknowledged write is there: each key holds its last acknowledged value, or a later
//     one that was in flight at the kill (a write may land without its answer reaching us); an
//     acknowledged delete stays deleted unless a later in-flight put landed;
//   - the history replays: every write acknowledged in the cycle reads back at its revision with
//     its value (a delete: absent at its revision), revisions are unique per request, txns are
//     atomic (both keys same value and revision), revisions never run past the store's;
//   - writes continue at the recovered revision + 1;
//   - optionally (cleanRestartEvery) a clean restart changes neither HashKV nor the keyspace.
// Problems are collected, not thrown: the bench counts them ("acknowledged writes lost").
import * as grpc from '@grpc/grpc-js';
import {
  DeleteRangeRequest, HashKVRequest, KVClient, MaintenanceClient, PutRequest, RangeRequest, RequestOp, TxnRequest,
  type DeleteRangeResponse, type HashKVResponse, type PutResponse, type RangeResponse, type TxnResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import type { KeyValue } from '../../src/gen/mvccpb/kv.js';
import { makeTempDir, removeTempDir, startOurServer, type Server } from '../helpers/procs.js';

const CALL_TIMEOUT_MS = 10_000;
const b = (s: string) => Buffer.from(s);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Cb<T> = (err: grpc.ServiceError | null, res: T) => void;
type Method<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: Cb<Res>) => unknown;
function call<Req, Res>(fn: Method<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res))));
}

export class Client {
  readonly kv: KVClient;
  readonly maint: MaintenanceClient;
  constructor(endpoint: string) {
    this.kv = new KVClient(endpoint, grpc.credentials.createInsecure());
    this.maint = new MaintenanceClient(endpoint, grpc.credentials.createInsecure());
  }
  put(key: string, value: string): Promise<PutResponse> {
    return call(this.kv.put.bind(this.kv), PutRequest.fromPartial({ key: b(key), value: b(value) }));
  }
  del(key: string): Promise<DeleteRangeResponse> {
    return call(this.kv.deleteRange.bind(this.kv), DeleteRangeRequest.fromPartial({ key: b(key) }));
  }
  txn(t: TxnRequest): Promise<TxnResponse> {
    return call(this.kv.txn.bind(this.kv), t);
  }
  range(r: Partial<RangeRequest> & { key: Buffer }): Promise<RangeResponse> {
    return call(this.kv.range.bind(this.kv), RangeRequest.fromPartial(r));
  }
  get(key: string, revision = 0n): Promise<RangeResponse> {
    return this.range({ key: b(key), revision });
  }
  all(): Promise<RangeResponse> {
    return this.range({ key: b('\0'), rangeEnd: b('\0') });
  }
  hashKV(): Promise<HashKVResponse> {
    return call(this.maint.hashKv.bind(this.maint), HashKVRequest.fromPartial({ revision: 0n }));
  }
  close(): void {
    this.kv.close();
    this.maint.close();
  }
}

const putOp = (key: string, value: string): RequestOp =>
  RequestOp.fromPartial({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b(key), value: b(value) }) } });

/** One acknowledged write. */
interface Ack {
  kind: 'put' | 'txn' | 'del';
  keys: string[];
  /** The value written (puts, txns); for deletes the sequence number of the delete. */
  n: number;
  rev: bigint;
}

/** Per-loop state that carries over between cycles: values keep increasing across restarts. */
interface LoopState {
  next: number;
  /** Last acknowledged value per key. */
  last: Map<string, { n: number; rev: bigint; deleted: boolean }>;
}

const kKey = (i: number) => `load/${String(i).padStart(2, '0')}/k`;
const t1Key = (i: number) => `load/${String(i).padStart(2, '0')}/t1`;
const t2Key = (i: number) => `load/${String(i).padStart(2, '0')}/t2`;
const dKey = (i: number) => `load/${String(i).padStart(2, '0')}/d`;

/**
 * One writer loop: puts its key with increasing values; every 5th step a txn writes two keys
 * with the same value; every 7th step puts then deletes a third key. Stops at the first error
 * (the server was killed). Returns the acknowledged writes.
 */
async function loop(c: Client, i: number, st: LoopState, stop: { v: boolean }, problems: string[]): Promise<Ack[]> {
  const acks: Ack[] = [];
  const ack = (a: Ack, deleted = false): void => {
    acks.push(a);
    for (const k of a.keys) st.last.set(k, { n: a.n, rev: a.rev, deleted });
  };
  try {
    while (!stop.v) {
      const n = st.next++;
      const p = await c.put(kKey(i), String(n));
      ack({ kind: 'put', keys: [kKey(i)], n, rev: p.header!.revision });
      if (n % 5 === 0) {
        const t = await c.txn(TxnRequest.fromPartial({ success: [putOp(t1Key(i), String(n)), putOp(t2Key(i), String(n))] }));
        ack({ kind: 'txn', keys: [t1Key(i), t2Key(i)], n, rev: t.header!.revision });
      }
      if (n % 7 === 0) {
        const dp = await c.put(dKey(i), String(n));
        ack({ kind: 'put', keys: [dKey(i)], n, rev: dp.header!.revision });
        const d = await c.del(dKey(i));
        if (d.deleted !== 1n) problems.push(`loop ${i}: delete of ${dKey(i)} right after its put deleted ${d.deleted}`);
        ack({ kind: 'del', keys: [dKey(i)], n, rev: d.header!.revision }, true);
      }
    }
  } catch (e) {
    if (typeof (e as Partial<grpc.ServiceError>).code !== 'number') throw e; // a bug in this code, not the kill
  }
  return acks;
}

function dump(r: RangeResponse): string[] {
  return r.kvs.map((kv) => `${kv.key}=${kv.value} c${kv.createRevision} m${kv.modRevision} v${kv.version} l${kv.lease}`);
}

/** Runs `fn` over items with `conc` workers. */
async function pool<T>(items: readonly T[], conc: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

/** What verify found: `lost` counts acknowledged writes missing (key lost, or missing from history). */
interface Verdict {
  problems: string[];
  lost: number;
}

/** Checks the restarted server against everything acknowledged so far. */
async function verify(c: Client, states: readonly LoopState[], cycleAcks: readonly Ack[], maxAckRev: bigint, cycle: number): Promise<Verdict> {
  const problems: string[] = [];
  let lost = 0;
  const check = (ok: boolean, msg: string, isLoss = false): void => {
    if (ok) return;
    problems.push(msg);
    if (isLoss) lost++;
  };
  const all = await c.all();
  const storeRev = all.header!.revision;
  check(storeRev >= maxAckRev, `cycle ${cycle}: store revision ${storeRev} < highest acknowledged revision ${maxAckRev}`);
  const live = new Map<string, KeyValue>(all.kvs.map((kv) => [kv.key.toString(), kv]));

  for (const [i, st] of states.entries()) {
    for (const [key, last] of st.last) {
      const kv = live.get(key);
      const where = `cycle ${cycle}, loop ${i}, key ${key} (acknowledged ${last.deleted ? 'delete' : 'value'} ${last.n} at rev ${last.rev})`;
      if (last.deleted) {
        // A later, unacknowledged put may have landed; an older value may not come back.
        if (kv !== undefined) {
          check(Number(kv.value.toString()) > last.n, `${where}: deleted key is back with ${kv.value}`, true);
          check(kv.modRevision > last.rev, `${where}: mod_revision ${kv.modRevision}`);
        }
        continue;
      }
      // The delete that follows a put of the d key may have landed without being acknowledged.
      if (kv === undefined && key === dKey(i)) continue;
      if (kv === undefined) {
        check(false, `${where}: key lost`, true);
        continue;
      }
      const v = Number(kv.value.toString());
      check(Number.isInteger(v) && v >= last.n && v < st.next, `${where}: value ${kv.value.toString()}`, v < last.n);
      check(kv.modRevision >= last.rev, `${where}: mod_revision ${kv.modRevision} older than acknowledged`);
      if (v === last.n) check(kv.modRevision === last.rev, `${where}: same value, different revision ${kv.modRevision}`);
      check(kv.createRevision <= kv.modRevision && kv.modRevision <= storeRev, `${where}: revisions c${kv.createRevision} m${kv.modRevision} store ${storeRev}`);
    }
    // A txn is all or nothing: both keys carry the same value and revision.
    const t1 = live.get(t1Key(i));
    const t2 = live.get(t2Key(i));
    check(t1?.value.toString() === t2?.value.toString(), `cycle ${cycle}, loop ${i}: txn keys diverged (${t1?.value} / ${t2?.value})`);
    check(t1?.modRevision === t2?.modRevision, `cycle ${cycle}, loop ${i}: txn keys at different revisions`);
  }
  for (const kv of all.kvs) check(kv.modRevision <= storeRev && kv.createRevision <= kv.modRevision, `${kv.key}: c${kv.createRevision} m${kv.modRevision} store ${storeRev}`);

  // History: every write acknowledged in this cycle is readable at its revision.
  await pool(cycleAcks, 32, async (a) => {
    for (const key of a.keys) {
      const r = await c.get(key, a.rev);
      const kv = r.kvs[0];
      const where = `cycle ${cycle}: ${a.kind} ${key} n=${a.n} acknowledged at rev ${a.rev}`;
      if (a.kind === 'del') check(kv === undefined, `${where}: key present at the delete's revision`, true);
      else {
        check(kv !== undefined, `${where}: missing from history`, true);
        if (kv !== undefined) check(kv.value.toString() === String(a.n) && kv.modRevision === a.rev, `${where}: reads ${kv.value} at m${kv.modRevision}`, true);
      }
    }
  });

  // Acknowledged revisions are unique per request (a txn's keys share one).
  const byRev = new Map<bigint, Ack>();
  for (const a of cycleAcks) {
    const other = byRev.get(a.rev);
    check(other === undefined, `cycle ${cycle}: revision ${a.rev} acknowledged twice (${other?.kind} ${other?.keys}, ${a.kind} ${a.keys})`);
    byRev.set(a.rev, a);
  }
  return { problems, lost };
}

export interface CrashLoopOptions {
  kills: number;
  /** Concurrent writer loops. */
  writers: number;
  /** The kill comes at a uniformly random moment in [minLoadMs, maxLoadMs) after the load starts. */
  minLoadMs: number;
  maxLoadMs: number;
  /** Every n-th cycle also checks that a clean restart changes neither HashKV nor the keyspace (0: never). */
  cleanRestartEvery: number;
  extraArgs?: string[];
  /** Progress, one line per cycle. */
  log?: (line: string) => void;
}

export interface CrashLoopResult {
  iterations: number;
  acknowledged: number;
  /** Acknowledged writes missing after a restart (must be 0). */
  lost: number;
  problems: string[];
  /** Highest revision acknowledged. */
  revision: bigint;
  seconds: number;
}

export async function runCrashLoop(o: CrashLoopOptions): Promise<CrashLoopResult> {
  const t0 = performance.now();
  const dataDir = await makeTempDir('crashloop-');
  const states: LoopState[] = Array.from({ length: o.writers }, () => ({ next: 1, last: new Map() }));
  const start = (): Promise<Server> => startOurServer({ dataDir, ...(o.extraArgs ? { extraArgs: o.extraArgs } : {}) });
  let maxAckRev = 0n;
  let acknowledged = 0;
  let lost = 0;
  const problems: string[] = [];
  let iterations = 0;
  let server: Server | undefined;
  try {
    server = await start();
    for (let cycle = 1; cycle <= o.kills; cycle++) {
      // --- load, then SIGKILL in the middle of it
      const c = new Client(server.endpoint);
      const stop = { v: false };
      const loopProblems: string[] = [];
      const loops = states.map((st, i) => loop(c, i, st, stop, loopProblems));
      await sleep(o.minLoadMs + Math.floor(Math.random() * (o.maxLoadMs - o.minLoadMs)));
      const killed = server;
      server = undefined;
      await killed.kill9();
      stop.v = true;
      const acks = (await Promise.all(loops)).flat();
      c.close();
      problems.push(...loopProblems);
      if (acks.length === 0) problems.push(`cycle ${cycle}: no write was acknowledged before the kill`);
      for (const a of acks) if (a.rev > maxAckRev) maxAckRev = a.rev;
      acknowledged += acks.length;
      iterations++;

      // --- restart on the same data dir, check everything acknowledged
      server = await start();
      const c2 = new Client(server.endpoint);
      try {
        const v = await verify(c2, states, acks, maxAckRev, cycle);
        problems.push(...v.problems);
        lost += v.lost;
        // New writes continue after the recovered revision.
        const before = (await c2.all()).header!.revision;
        const p = await c2.put('after-restart', String(cycle));
        if (p.header!.revision !== before + 1n) problems.push(`cycle ${cycle}: first write after restart at ${p.header!.revision}, store was at ${before}`);
        maxAckRev = p.header!.revision;
        o.log?.(`cycle ${cycle}: ${acks.length} writes acknowledged before SIGKILL, revision ${maxAckRev}, ${v.lost} lost, ${v.problems.length} problems`);

        if (o.cleanRestartEvery > 0 && cycle % o.cleanRestartEvery === 0) {
          // --- a clean restart changes neither HashKV nor the keyspace
          const h1 = await c2.hashKV();
          const r1 = await c2.all();
          c2.close();
          await server.stop();
          server = await start();
          const c3 = new Client(server.endpoint);
          try {
            const h2 = await c3.hashKV();
            const r2 = await c3.all();
            if (h2.header!.revision !== h1.header!.revision) problems.push(`cycle ${cycle}: revision changed across a clean restart`);
            if (h2.hash !== h1.hash || h2.compactRevision !== h1.compactRevision) problems.push(`cycle ${cycle}: HashKV changed across a clean restart`);
            if (JSON.stringify(dump(r2)) !== JSON.stringify(dump(r1))) problems.push(`cycle ${cycle}: keyspace changed across a clean restart`);
          } finally {
            c3.close();
          }
        }
      } finally {
        c2.close();
      }
    }
  } finally {
    await server?.stop();
    await removeTempDir(dataDir);
  }
  return { iterations, acknowledged, lost, problems, revision: maxAckRev, seconds: (performance.now() - t0) / 1000 };
}
