// What a learner serves to clients, as etcd 3.4 decides it (v3rpc/interceptor.go,
// isRPCSupportedForLearner): Maintenance.Status and serializable KV.Range, both unary. Every other
// call, and every stream (Watch, LeaseKeepAlive, Snapshot, Observe), is refused with
// ErrGPRCNotSupportedForLearner. One rule for every edge that calls the backend on a client's
// behalf (gRPC, the v3 gateway); etcd's v2 API has no such check (a 3.4 learner serves it whole).
import { EtcdError } from './errors.js';
import type { V3Backend } from './index.js';

const STATUS = '/etcdserverpb.Maintenance/Status';
const RANGE = '/etcdserverpb.KV/Range';

/** Whether a learner serves this call: `grpcPath` as gRPC names it, the request decoded (if any). */
export function learnerServes(grpcPath: string, request: unknown): boolean {
  if (grpcPath === STATUS) return true;
  if (grpcPath === RANGE) return (request as { serializable?: unknown } | undefined)?.serializable === true;
  return false;
}

/**
 * The refusal for this call on this backend now, else undefined. Read per call: a promotion turns
 * a learner into a voter while the server runs (a map lookup; nothing for non-learner backends).
 */
export function learnerRefusal(backend: Pick<V3Backend, 'isLearner'>, grpcPath: string, request: unknown): EtcdError | undefined {
  if (backend.isLearner === undefined || !backend.isLearner()) return undefined;
  return learnerServes(grpcPath, request) ? undefined : new EtcdError('notSupportedForLearner');
}
