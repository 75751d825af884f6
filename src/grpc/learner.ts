// The gRPC edge's learner gate: etcd 3.4's unary and stream interceptors refuse a learner's calls
// (src/backend/learner.ts decides which) with ErrGPRCNotSupportedForLearner, before any handler.
import type { V3Backend } from '../backend/index.js';
import { learnerRefusal } from '../backend/learner.js';
import type { CallGate } from './metrics.js';
import { toServiceError, type Logger } from './status.js';

export function learnerGate(backend: V3Backend, log: Logger): CallGate {
  return (grpcPath, request) => {
    const refusal = learnerRefusal(backend, grpcPath, request);
    return refusal === undefined ? undefined : toServiceError(refusal, log);
  };
}
