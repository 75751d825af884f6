// The gateway's one error table: a gRPC status (from grpc/status.ts, which owns etcd's messages)
// to grpc-gateway v1's HTTP status and error bodies.
import { STATUS_CODES } from 'node:http';
import { goJsonString } from '../../gateway/index.js';
import type { V3Backend } from '../../backend/index.js';
import { learnerRefusal } from '../../backend/learner.js';
import { toServiceError, toUnknownError, type Logger } from '../../grpc/status.js';

/**
 * FAILED_PRECONDITION: 412 on the Debian etcd 3.4.23 binary the compat tests run against;
 * grpc-gateway v1.9.5 (pinned by upstream v3.4.23) answers 400.
 */
export const FAILED_PRECONDITION_HTTP_STATUS = 412;

const HTTP_STATUS_BY_GRPC_CODE: Readonly<Record<number, number>> = {
  0: 200, 1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
  9: FAILED_PRECONDITION_HTTP_STATUS, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};

export const GrpcCode = { UNKNOWN: 2, INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13 } as const;

export interface GatewayStatus {
  readonly code: number;
  readonly message: string;
}

export function httpStatusOf(code: number): number {
  return HTTP_STATUS_BY_GRPC_CODE[code] ?? 500;
}

/** The status a failed backend call reaches the client with: etcd services, or Lock/Election (UNKNOWN). */
export function statusOf(e: unknown, flavor: 'etcd' | 'recipe', log: Logger): GatewayStatus {
  const s = flavor === 'etcd' ? toServiceError(e, log) : toUnknownError(e, log);
  return { code: s.code ?? GrpcCode.INTERNAL, message: s.details ?? '' };
}

/**
 * A learner's refusal of this call (src/backend/learner.ts), else undefined. etcd's gateway calls
 * its own gRPC server, whose interceptor refuses with UNAVAILABLE: Lock and Election included.
 */
export function learnerStatus(backend: V3Backend, grpcPath: string, request: unknown, log: Logger): GatewayStatus | undefined {
  const refusal = learnerRefusal(backend, grpcPath, request);
  return refusal === undefined ? undefined : statusOf(refusal, 'etcd', log);
}

/** Unary error body: {"error":msg,"message":msg,"code":n}. */
export function errorBody(s: GatewayStatus): string {
  const m = goJsonString(s.message);
  return `{"error":${m},"message":${m},"code":${s.code}}`;
}

/** The last object of a failed stream (no trailing newline). */
export function streamErrorBody(s: GatewayStatus): string {
  const http = httpStatusOf(s.code);
  const code = s.code === 0 ? '' : `"grpc_code":${s.code},`;
  return `{"error":{${code}"http_code":${http},"message":${goJsonString(s.message)},"http_status":${goJsonString(STATUS_CODES[http] ?? '')}}}`;
}

export function unimplemented(grpcPath: string): GatewayStatus {
  return { code: GrpcCode.UNIMPLEMENTED, message: `The server does not implement the method ${grpcPath}` };
}

/** What etcd's gRPC server says about a request message over its receive limit. */
export function tooLarge(bytes: number, limitBytes: number): GatewayStatus {
  return { code: GrpcCode.RESOURCE_EXHAUSTED, message: `grpc: received message larger than max (${bytes} vs. ${limitBytes})` };
}
