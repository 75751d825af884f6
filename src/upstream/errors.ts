// What an upstream failure means: the error a client sees (etcd's typed errors again where the
// message is one of etcd's), whether the endpoint should be abandoned, and whether the request
// provably never reached a server (the only case in which a write may be sent again).
import { status, type ServiceError } from '@grpc/grpc-js';
import { EtcdError, StatusError } from '../backend/errors.js';
import { errorCodeByMessage } from '../grpc/status.js';

export function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === 'number' && 'details' in e;
}

/** The error the edges map: an EtcdError for etcd's own messages, else the status as it came. */
export function toBackendError(e: unknown): Error {
  if (!isServiceError(e)) return e instanceof Error ? e : new Error(String(e));
  const code = errorCodeByMessage.get(e.details);
  // The message stays etcd's text, so whoever prints it (a refused start, a v2 error cause) says what etcd said.
  if (code !== undefined) return new EtcdError(code, e.details);
  if (e.code === status.DEADLINE_EXCEEDED) return new StatusError(status.DEADLINE_EXCEEDED, 'context deadline exceeded');
  if (e.code === status.UNAVAILABLE) return new StatusError(status.UNAVAILABLE, `etcd upstream unavailable: ${e.details}`);
  return new StatusError(e.code, e.details);
}

const LEADERLESS = new Set(['etcdserver: no leader', 'etcdserver: leader changed', 'etcdserver: not leader', 'etcdserver: server stopped']);

/** The endpoint cannot serve now (down, unreachable, or a member without a leader): try another. */
export function isEndpointFailure(e: unknown): boolean {
  if (!isServiceError(e)) return false;
  return e.code === status.UNAVAILABLE || LEADERLESS.has(e.details);
}

/**
 * The request was certainly not executed, so even a write may be sent again:
 * - grpc-js failed to connect before sending anything ("No connection established ...");
 * - the server refused the stream ("Stream refused by server": its REFUSED_STREAM, or a stream
 *   above its GOAWAY's last stream ID, which RFC 9113 8.7 guarantees it did not process);
 * - etcd's require-leader interceptor refused it before executing ("etcdserver: no leader" while
 *   we send the `hasleader` metadata: the interceptor answers before the handler runs).
 * A dropped connection, a timeout or "request timed out" are ambiguous: the write may be applied.
 */
export function neverExecuted(e: unknown): boolean {
  if (!isServiceError(e)) return false;
  if (e.code === status.UNAVAILABLE && (e.details.startsWith('No connection established') || e.details === 'Stream refused by server')) return true;
  return e.details === 'etcdserver: no leader';
}
