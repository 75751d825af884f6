// The v2 keys request: parameters validated in etcd's order (spec 3.4) and dispatched to one
// operation (spec 4). Pure: form values in, a typed operation or a V2Error out.
import { V2Error, type WriteRequest } from '../../v2/index.js';

export type KeysOperation =
  | { readonly kind: 'get'; readonly path: string; readonly recursive: boolean; readonly sorted: boolean; readonly quorum: boolean }
  | { readonly kind: 'watch'; readonly path: string; readonly recursive: boolean; readonly waitIndex: number; readonly stream: boolean }
  | { readonly kind: 'write'; readonly request: WriteRequest; readonly noValueOnSuccess: boolean };

export type KeysMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);
const UINT64_MAX = 18446744073709551615n;

function bool(v: string | undefined, name: string, quote = true): boolean | undefined {
  if (v === undefined) return undefined;
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new V2Error(209, `invalid value for ${quote ? `"${name}"` : name}`);
}

function isUint(v: string): boolean {
  return /^[0-9]+$/.test(v) && BigInt(v) <= UINT64_MAX;
}

function uint(v: string | undefined, code: 202 | 203, name: string): number {
  if (v === undefined) return 0;
  if (!isUint(v)) throw new V2Error(code, `invalid value for "${name}"`);
  return Number(v);
}

/** Validates the form and picks the operation; throws V2Error (index 0) on a bad request. */
export function parseKeysRequest(method: KeysMethod, path: string, form: ReadonlyMap<string, string>): KeysOperation {
  const f = (n: string): string | undefined => form.get(n);
  const prevIndex = uint(f('prevIndex'), 203, 'prevIndex');
  const waitIndex = uint(f('waitIndex'), 203, 'waitIndex');
  const recursive = bool(f('recursive'), 'recursive') ?? false;
  const sorted = bool(f('sorted'), 'sorted') ?? false;
  const wait = bool(f('wait'), 'wait') ?? false;
  const dir = bool(f('dir'), 'dir') ?? false;
  const quorum = bool(f('quorum'), 'quorum') ?? false;
  const stream = bool(f('stream'), 'stream') ?? false;
  if (wait && method !== 'GET') throw new V2Error(209, '"wait" can only be used with GET requests');
  const prevValue = f('prevValue');
  if (prevValue === '') throw new V2Error(201, '"prevValue" cannot be empty');
  const noValueOnSuccess = bool(f('noValueOnSuccess'), 'noValueOnSuccess') ?? false;
  const ttl = f('ttl');
  if (ttl !== undefined && ttl !== '' && !isUint(ttl)) throw new V2Error(202, 'invalid value for "ttl"');
  const prevExist = bool(f('prevExist'), 'prevExist', false);
  const refresh = bool(f('refresh'), 'refresh', false) ?? false;
  const value = f('value') ?? '';
  if (refresh && value !== '') throw new V2Error(211, 'A value was provided on a refresh');
  if (refresh && (ttl === undefined || ttl === '')) throw new V2Error(212, 'No TTL value set');

  switch (method) {
    case 'GET':
    case 'HEAD':
      if (method === 'GET' && wait && !quorum) return { kind: 'watch', path, recursive, waitIndex, stream };
      return { kind: 'get', path, recursive, sorted, quorum };
    case 'DELETE': {
      if (prevIndex > 0 || prevValue !== undefined) {
        return { kind: 'write', noValueOnSuccess, request: { kind: 'compareAndDelete', path, prevIndex, ...(prevValue !== undefined ? { prevValue } : {}) } };
      }
      return { kind: 'write', noValueOnSuccess, request: { kind: 'delete', path, dir, recursive } };
    }
    case 'POST':
    case 'PUT': {
      // ttl absent or empty: permanent (removes an existing TTL). refresh: ignored by create and POST.
      const t = ttl !== undefined && ttl !== '' ? { ttl: BigInt(ttl) } : {};
      const r = refresh ? { ...t, refresh: true } : t;
      if (method === 'POST') return { kind: 'write', noValueOnSuccess, request: { kind: 'post', path, value: dir ? '' : value, dir, ...t } };
      const cas = prevIndex > 0 || prevValue !== undefined;
      const casReq: WriteRequest = { kind: 'compareAndSwap', path, value, prevIndex, ...(prevValue !== undefined ? { prevValue } : {}), ...r };
      if (prevExist === false) return { kind: 'write', noValueOnSuccess, request: { kind: 'create', path, value: dir ? '' : value, dir, ...t } };
      if (prevExist === true) return { kind: 'write', noValueOnSuccess, request: cas ? casReq : { kind: 'update', path, value: dir ? '' : value, ...r } };
      if (cas) return { kind: 'write', noValueOnSuccess, request: casReq };
      return { kind: 'write', noValueOnSuccess, request: { kind: 'set', path, value: dir ? '' : value, dir, ...r } };
    }
  }
}
