// go-grpc-prometheus's server counters for every gRPC service: grpc_server_started_total when a
// call starts, grpc_server_handled_total with its status code when it ends. Counts are plain
// numbers bound once per method (see ServerMetrics.grpcMethod).
//
// Unary calls are counted in their handler (InstrumentedServer), streams by a server interceptor.
// An interceptor wraps every call in one more ServerInterceptingCall layer (its listener,
// responder and closures): on the unary hot path (Put, Range) that layer cost more than the
// counting. Counting in the handler is also where grpc-go's interceptor sees a unary call: after
// the request decoded, so a request that fails to decode is counted by neither.
import * as grpc from '@grpc/grpc-js';
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { GrpcType, ServerMetrics } from '../metrics/index.js';
import { serveDirect, takes, type DirectMethod, type DirectServer } from './direct.js';

function typeOf(d: { requestStream: boolean; responseStream: boolean }): GrpcType {
  if (d.requestStream) return d.responseStream ? 'bidi_stream' : 'client_stream';
  return d.responseStream ? 'server_stream' : 'unary';
}

/** Streaming calls: counted when they start and when their status is sent (or they are canceled). */
export function metricsInterceptor(metrics: ServerMetrics, gate?: CallGate): grpc.ServerInterceptor {
  return (descriptor, call) => {
    // Unary calls: InstrumentedServer counts them. grpc-js chains interceptors by reduce() over the
    // call interface, so handing back the call as it is adds no layer (the type asks for the class).
    if (!descriptor.requestStream && !descriptor.responseStream) return call as grpc.ServerInterceptingCall;
    // A stream the gate refuses is not counted: etcd's prometheus interceptor runs after its
    // learner check. (No stream's refusal depends on its request.)
    if (gate?.(descriptor.path, undefined) !== undefined) return call as grpc.ServerInterceptingCall;
    const m = metrics.grpcMethod(descriptor.path, typeOf(descriptor));
    m.started++;
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      m.handled[code in m.handled ? code : grpc.status.UNKNOWN]!++;
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

/** The status code grpc-js sends for a unary handler's answer (its serverErrorToStatus). */
function unaryCode(call: grpc.ServerUnaryCall<unknown, unknown>, err: Partial<grpc.StatusObject> | null): number {
  // Answered after the client went away or the deadline passed: grpc-js sent that status already.
  if (call.cancelled) return grpc.status.CANCELLED;
  const deadline = call.getDeadline();
  if (deadline !== Infinity && +deadline <= Date.now()) return grpc.status.DEADLINE_EXCEEDED;
  if (err === null || err === undefined) return grpc.status.OK;
  return typeof err.code === 'number' && Number.isInteger(err.code) ? err.code : grpc.status.UNKNOWN;
}

type UnaryImpl = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;
type StreamImpl = (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => void;

/**
 * Decides, before a handler runs, whether a call is refused (a learner's calls, src/backend/learner.ts):
 * the status to answer with, else undefined. `request` is the decoded message of a unary or
 * server-streaming call, undefined for a client stream.
 */
export type CallGate = (grpcPath: string, request: unknown) => Partial<grpc.ServiceError> | undefined;

/**
 * A grpc-js server whose unary handlers count themselves (see the top of this file), and whose
 * every method (unary and streaming, of every service) passes the gate first.
 */
export class InstrumentedServer extends grpc.Server {
  /** Methods served off the HTTP/2 stream (direct.ts), by gRPC path. */
  private readonly direct = new Map<string, DirectMethod>();
  private readonly directServer: DirectServer;
  /** Calls the direct path took (tests check that it serves them). */
  directCalls = 0;

  constructor(private readonly metrics: ServerMetrics, options?: grpc.ServerOptions, private readonly gate?: CallGate) {
    super({ ...options, interceptors: [...(options?.interceptors ?? []), metricsInterceptor(metrics, gate)] });
    const max = options?.['grpc.max_receive_message_length'];
    this.directServer = {
      // grpc-js's default when the option is absent: 4 MiB.
      maxReceiveBytes: typeof max === 'number' ? max : 4 * 1024 * 1024,
      counters: (path) => metrics.grpcMethod(path, 'unary'),
      refusal: (path, request) => gate?.(path, request),
    };
  }

  /** Serves a unary method off its HTTP/2 stream on connections injected from now on (its
   * grpc-js handler stays, for the streams direct.ts leaves to grpc-js). */
  addDirect(method: DirectMethod): void {
    this.direct.set(method.path, method);
  }

  /**
   * grpc-js's injector with the direct path in front of its stream handler. grpc-js keeps the
   * HTTP/2 server it made for the injector in `http2Servers` (not public API): if that is ever
   * not there, every call simply goes through grpc-js.
   */
  override createConnectionInjector(credentials: grpc.ServerCredentials): grpc.ConnectionInjector {
    const injector = super.createConnectionInjector(credentials);
    const servers = (this as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
    const h2 = servers instanceof Map ? [...servers.keys()].at(-1) : undefined;
    const opened = (this as unknown as { onStreamOpened?: (s: ServerHttp2Stream) => void }).onStreamOpened;
    if (h2 === undefined || h2.listenerCount('stream') !== 1) return injector;
    const grpcHandler = h2.listeners('stream')[0] as (...args: unknown[]) => void;
    h2.removeAllListeners('stream');
    h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
      const m = this.direct.get(headers[':path'] ?? '');
      if (m === undefined || !takes(headers)) {
        grpcHandler.call(h2, stream, headers, ...rest);
        return;
      }
      opened?.call(this, stream); // grpc-js's idle-connection accounting
      this.directCalls++;
      serveDirect(stream, headers, m, this.directServer);
    });
    return injector;
  }

  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    const wrapped: grpc.UntypedServiceImplementation = { ...implementation };
    const gate = this.gate;
    for (const [name, def] of Object.entries(service)) {
      if (def.requestStream || def.responseStream) {
        const fn = (implementation[name] ?? (def.originalName === undefined ? undefined : implementation[def.originalName])) as StreamImpl | undefined;
        if (gate === undefined || fn === undefined) continue;
        // A refused stream ends with the status before its handler runs (and is not counted).
        wrapped[name] = ((call) => {
          const refusal = gate(def.path, def.requestStream ? undefined : (call as grpc.ServerWritableStream<unknown, unknown>).request);
          if (refusal !== undefined) call.emit('error', refusal);
          else fn.call(implementation, call);
        }) satisfies StreamImpl;
        continue;
      }
      // A method left out (membership changes, for now) gets grpc-js's own answer, counted too.
      const fn = (implementation[name] ?? (def.originalName === undefined ? undefined : implementation[def.originalName])
        ?? ((_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: `The server does not implement the method ${name}` }, null))) as UnaryImpl;
      const m = this.metrics.grpcMethod(def.path, 'unary');
      const counted: UnaryImpl = (call, callback) => {
        // Refused before counting, as etcd's learner check runs before its prometheus interceptor.
        const refusal = gate?.(def.path, call.request);
        if (refusal !== undefined) return callback(refusal, null);
        m.started++;
        try {
          fn.call(implementation, call, (err, value, trailer, flags) => {
            const code = unaryCode(call, err);
            m.handled[code in m.handled ? code : grpc.status.UNKNOWN]!++;
            callback(err, value, trailer, flags);
          });
        } catch (e) {
          m.handled[grpc.status.UNKNOWN]!++; // grpc-js answers a throwing handler UNKNOWN
          throw e;
        }
      };
      wrapped[name] = counted;
    }
    super.addService(service, wrapped);
  }
}
