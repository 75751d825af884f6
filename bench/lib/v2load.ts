// The v2 keys API requests of `npm run bench -- v2`: GET of one key and PUT of a form-encoded value
// (application/x-www-form-urlencoded, as etcdctl v2 and the v2 client libraries send it), over an
// undici Pool. The closed loops, windows and threads are ./httpload.ts's and ./workers.ts's.
import { randomBytes } from 'node:crypto';
import type { Pool } from 'undici';

export interface V2Workload {
  /** row name in the report */
  name: string;
  api: 'v2';
  /** get: GET V2_GET_KEY; put: PUT a random key of keyCount */
  op: 'get' | 'put';
  /** put: keys V2_PUT_DIR/k0000 ..; all preloaded so every put replaces a value (steady state) */
  keyCount: number;
  /** bytes of each value (letters and digits only: the form encoding is the value itself) */
  valueSize: number;
  /** `Authorization` header sent with every request (HTTP basic auth); none when auth is off. */
  authorization?: string;
}

/** The `Authorization` value of HTTP basic auth, as v2 clients send it. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** The one key the `get` rows read (preloaded); the watchers' GET-latency probe reads it too. */
export const V2_GET_KEY = '/bench/get1';
export const V2_PUT_DIR = '/bench/put';

export const v2PutKey = (i: number): string => `${V2_PUT_DIR}/k${String(i).padStart(4, '0')}`;

export function isV2(w: { name: string }): w is V2Workload {
  return (w as Partial<V2Workload>).api === 'v2';
}

/** Random value of letters and digits, so that it needs no escaping in a form body. */
export function formSafeValue(size: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from(randomBytes(size), (b) => alphabet[b % alphabet.length]).join('');
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

interface V2Node {
  key?: string;
  value?: string;
}

interface V2Answer {
  action?: string;
  node?: V2Node;
  errorCode?: number;
  message?: string;
}

/** One v2 request; rejects on a status outside `ok` (the error text carries etcd's message). */
export async function v2Request(
  pool: Pool, method: 'GET' | 'PUT', key: string, body?: string, ok: readonly number[] = [200], authorization?: string,
): Promise<string> {
  const headers: Record<string, string> = body === undefined ? {} : { ...FORM };
  if (authorization !== undefined) headers.authorization = authorization;
  const r = await pool.request({ path: `/v2/keys${key}`, method, headers, ...(body === undefined ? {} : { body }) });
  const text = await r.body.text();
  if (!ok.includes(r.statusCode)) throw new Error(`${method} /v2/keys${key}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

/** PUT key=value; 201 when created, 200 when replaced. */
export function v2Put(pool: Pool, key: string, value: string): Promise<string> {
  return v2Request(pool, 'PUT', key, `value=${value}`, [200, 201]);
}

/** The value every preloaded key holds (fixed per process, so the checks know what to expect). */
const PRELOAD_VALUE_BY_SIZE = new Map<number, string>();
export function preloadValue(size: number): string {
  let v = PRELOAD_VALUE_BY_SIZE.get(size);
  if (v === undefined) {
    v = 'p'.repeat(size);
    PRELOAD_VALUE_BY_SIZE.set(size, v);
  }
  return v;
}

/** Creates V2_GET_KEY and the put keys, `inflight` PUTs at a time. */
export async function preloadV2(pool: Pool, keyCount: number, valueSize: number, inflight: number): Promise<void> {
  const value = preloadValue(valueSize);
  await v2Put(pool, V2_GET_KEY, value);
  let next = 0;
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < keyCount) await v2Put(pool, v2PutKey(next++), value);
    }),
  );
}

type Issue = (pool: Pool, r: () => number, check: boolean) => Promise<string | undefined>;

/** The request of one loop iteration; with `check`, the answer is decoded and compared. */
export function v2Issuer(w: V2Workload): Issue {
  if (w.op === 'get') {
    const want = preloadValue(w.valueSize);
    return async (pool, _r, check) => {
      const text = await v2Request(pool, 'GET', V2_GET_KEY, undefined, [200], w.authorization);
      if (!check) return undefined;
      const a = JSON.parse(text) as V2Answer;
      return a.action === 'get' && a.node?.value === want ? undefined : `get: unexpected answer ${text.slice(0, 200)}`;
    };
  }
  const value = formSafeValue(w.valueSize);
  const body = `value=${value}`;
  const paths = Array.from({ length: w.keyCount }, (_, i) => v2PutKey(i));
  return async (pool, r, check) => {
    const key = paths[r() % w.keyCount]!;
    const text = await v2Request(pool, 'PUT', key, body, [200, 201], w.authorization);
    if (!check) return undefined;
    const a = JSON.parse(text) as V2Answer;
    return a.action === 'set' && a.node?.key === key && a.node.value === value ? undefined : `put: unexpected answer ${text.slice(0, 200)}`;
  };
}

/** Opens every connection of the pool with one cheap GET each (all at once). */
export async function warmV2(pool: Pool, n: number, authorization?: string): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => v2Request(pool, 'GET', V2_GET_KEY, undefined, [200, 404], authorization)));
}
