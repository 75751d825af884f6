// Small clients for cluster tests: the v3 JSON gateway of one member over HTTP (no client-side
// failover, so a test sees exactly what that member answers), and etcdctl's JSON views.
import type { OurCluster } from '../helpers/ourcluster.js';
import { etcdctl } from '../helpers/procs.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString();

export class HttpError extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`HTTP ${status}: ${body}`);
  }
}

export async function v3(endpoint: string, path: string, body: unknown, timeoutMs = 10_000): Promise<Record<string, any>> {
  const res = await fetch(`http://${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status !== 200) throw new HttpError(res.status, text);
  return JSON.parse(text) as Record<string, any>;
}

export async function put(endpoint: string, key: string, value: string): Promise<number> {
  const r = await v3(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value) });
  return Number(r.header.revision);
}

/** The value (undefined when absent); serializable reads stay local. */
export async function get(endpoint: string, key: string, serializable = false): Promise<string | undefined> {
  const r = await v3(endpoint, '/v3/kv/range', { key: b64(key), serializable });
  const kv = (r.kvs as { value?: string }[] | undefined)?.[0];
  return kv === undefined ? undefined : unb64(kv.value);
}

/** Compare-and-swap through a txn: value == expected -> put next. Returns whether it succeeded. */
export async function cas(endpoint: string, key: string, expected: string, next: string): Promise<boolean> {
  const r = await v3(endpoint, '/v3/kv/txn', {
    compare: [{ key: b64(key), target: 'VALUE', result: 'EQUAL', value: b64(expected) }],
    success: [{ requestPut: { key: b64(key), value: b64(next) } }],
  });
  return r.succeeded === true;
}

/** HashKV at a revision through etcdctl (`endpoint hashkv --rev`). */
export async function hashKV(endpoint: string, revision: number): Promise<{ hash: number; rev: number }> {
  const r = await etcdctl(endpoint, ['endpoint', 'hashkv', '--rev', String(revision), '-w', 'json']);
  if (r.code !== 0) throw new Error(`endpoint hashkv: ${r.stderr}`);
  const [h] = parseJsonBig(r.stdout) as { HashKV: { hash: number; header: { revision: number } } }[];
  return { hash: h!.HashKV.hash, rev: Number(h!.HashKV.header.revision) };
}

/** etcdctl prints 64-bit IDs as bare JSON numbers: keep the long ones exact (as strings). */
export function parseJsonBig(text: string): unknown {
  return JSON.parse(text.replace(/([:\[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

export interface StatusJson {
  Endpoint: string;
  Status: { header: { member_id: number; raft_term: number; revision: number }; leader: number; raftIndex: number; raftTerm: number; raftAppliedIndex?: number; isLearner?: boolean };
}

export async function endpointStatus(endpoints: string): Promise<StatusJson[]> {
  const r = await etcdctl(endpoints, ['endpoint', 'status', '-w', 'json']);
  if (r.code !== 0) throw new Error(`endpoint status: ${r.stderr}`);
  return parseJsonBig(r.stdout) as StatusJson[];
}

/** Polls until fn returns a value (not undefined) or the time is up. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The leader every given endpoint agrees on (undefined while they disagree or have none). */
export async function agreedLeader(endpoints: string[]): Promise<bigint | undefined> {
  const st = await endpointStatus(endpoints.join(','));
  if (st.length !== endpoints.length) return undefined;
  const leaders = new Set(st.map((s) => BigInt(s.Status.leader)));
  const [l] = [...leaders];
  return leaders.size === 1 && l !== 0n ? l : undefined;
}

/** The index in c.members of the running member with this ID (by endpoint status). */
export async function memberIndex(c: OurCluster, id: bigint): Promise<number> {
  const st = await endpointStatus(c.endpoints());
  const s = st.find((x) => BigInt(x.Status.header.member_id) === id);
  if (s === undefined) throw new Error(`no running member has ID ${id.toString(16)}`);
  return c.members.findIndex((m) => m.endpoint === s.Endpoint);
}
