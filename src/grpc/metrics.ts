// go-grpc-prometheus's server counters for every gRPC service, as one grpc-js server interceptor:
// grpc_server_started_total when a call starts, grpc_server_handled_total with its status code
// when it ends. Label children are bound once per method (see ServerMetrics.grpcMethod).
import * as grpc from '@grpc/grpc-js';
import type { GrpcType, ServerMetrics } from '../metrics/index.js';

function typeOf(d: { requestStream: boolean; responseStream: boolean }): GrpcType {
  if (d.requestStream) return d.responseStream ? 'bidi_stream' : 'client_stream';
  return d.responseStream ? 'server_stream' : 'unary';
}

export function metricsInterceptor(metrics: ServerMetrics): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const m = metrics.grpcMethod(descriptor.path, typeOf(descriptor));
    m.started.inc();
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      (m.handled[code] ?? m.handled[grpc.status.UNKNOWN]!).inc();
    };
    return new grpc.ServerInterceptingCall(call, {
      // A call the client cancels (a watch stream closed by its client) sends no status: it ends
      // as Canceled, as grpc-go reports it.
      start: (next) => next({ onCancel: () => finish(grpc.status.CANCELLED) }),
      sendStatus(status, next) {
        finish(status.code);
        next(status);
      },
    });
  };
}
