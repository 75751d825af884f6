// What every gateway handler needs, built once by the plugin.
import type { IncomingHttpHeaders } from 'node:http';
import type { CallContext, V3Backend } from '../../backend/index.js';
import type { GatewayCodec } from '../../gateway/index.js';
import type { Logger } from '../../grpc/status.js';
import type { OpenStreams } from '../../util/open-streams.js';
import type { BodyPool } from './body.js';

export interface GatewayContext {
  readonly backend: V3Backend;
  readonly codec: GatewayCodec;
  readonly log: Logger;
  /** etcd's gRPC receive limit: --max-request-bytes + 512 KiB. */
  readonly grpcMaxBytes: number;
  /** Request bodies past this are not buffered (base64 and JSON inflate a message ~4/3 and more). */
  readonly bodyMaxBytes: number;
  /** Watch, keepalive and observe streams register here, so a shutdown ends them cleanly. */
  readonly streams: OpenStreams;
  /** Large unary bodies' buffers, reused once decoded. */
  readonly bodies: BodyPool;
}

export function makeLimits(maxRequestBytes: number): { grpcMaxBytes: number; bodyMaxBytes: number } {
  const grpcMaxBytes = maxRequestBytes + 512 * 1024;
  return { grpcMaxBytes, bodyMaxBytes: 4 * grpcMaxBytes };
}

/** The auth token of a gateway request: grpc-gateway forwards `Grpc-Metadata-Token` as gRPC
 * metadata `token` and `Authorization` as `authorization`; etcd reads `token` first. */
export function authOf(headers: IncomingHttpHeaders): CallContext {
  const token = headers['grpc-metadata-token'] ?? headers.authorization;
  return { token: Array.isArray(token) ? token[0] : token };
}
