// The four streaming routes. Client streams (watch, keepalive) decode the body as it arrives and
// forward each JSON value at once; a bad first value refuses the request (500, code 2), a later
// one only half-closes. Server streams (snapshot, observe) decode one body like a unary call.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CallContext } from '../../backend/index.js';
import type { WatchRequest, LeaseKeepAliveRequest, SnapshotRequest } from '../../gen/etcdserverpb/rpc.js';
import type { LeaderRequest } from '../../gen/v3electionpb/v3election.js';
import { DecodeError, RequestStreamDecoder, type Message, type MethodInfo } from '../../gateway/index.js';
import { asCaller } from '../../recipes/backend.js';
import { observe } from '../../recipes/election.js';
import { readBody } from './body.js';
import { authOf, type GatewayContext } from './context.js';
import { GrpcCode, learnerStatus, statusOf, tooLarge, type GatewayStatus } from './errors.js';
import { ResultStream, sendGatewayError, sendGrpcError } from './replies.js';
import { endsAtClientFin } from '../half-close.js';

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

// The decoder builds these from the same .proto schema as the ts-proto types (see calls.ts).
const asWatch = (m: Message): WatchRequest => m as unknown as WatchRequest;
const asKeepAlive = (m: Message): LeaseKeepAliveRequest => m as unknown as LeaseKeepAliveRequest;
const asSnapshot = (m: Message): SnapshotRequest => m as unknown as SnapshotRequest;
const asLeader = (m: Message): LeaderRequest => m as unknown as LeaderRequest;

/**
 * A learner refuses every stream before it starts: etcd's gateway then answers the status as a
 * failed stream (503 and the stream's error object), whatever the body holds.
 */
function refusedOnLearner(ctx: GatewayContext, method: MethodInfo, request: Message | undefined, out: ResultStream): boolean {
  const refused = learnerStatus(ctx.backend, method.grpcPath, request, ctx.log);
  if (refused !== undefined) out.fail(refused);
  return refused !== undefined;
}

/**
 * Feeds the request body, value by value, to onMessage. onRefused gets a decode failure of the
 * first value; onHalfClose runs once at the end of the body or at a later decode failure.
 */
function readClientStream(
  ctx: GatewayContext, req: FastifyRequest, typeName: string,
  on: { message(m: Message): void; refused(s: GatewayStatus): void; halfClose(): void },
): void {
  const dec = new RequestStreamDecoder(ctx.codec, typeName, ctx.bodyMaxBytes);
  let seen = 0;
  let done = false;
  const feed = (next: () => Message[]): void => {
    if (done) return;
    for (const m of next()) {
      seen++;
      on.message(m);
    }
    if (dec.failure === undefined) return;
    done = true;
    if (seen === 0) on.refused({ code: GrpcCode.UNKNOWN, message: dec.failure.message });
    else on.halfClose();
  };
  req.raw.on('data', (chunk: Buffer) => feed(() => dec.push(chunk)));
  req.raw.on('end', () => {
    feed(() => dec.end());
    if (!done) {
      done = true;
      on.halfClose();
    }
  });
}

export function watchHandler(ctx: GatewayContext, method: MethodInfo): Handler {
  return async (req, reply) => {
    reply.hijack();
    const out = new ResultStream(reply, ctx.codec, method.responseType);
    if (refusedOnLearner(ctx, method, undefined, out)) return;
    const session = ctx.backend.watch({ send: (r) => void out.send(r), backlogBytes: () => out.backlogBytes() }, authOf(req.headers));
    const release = ctx.streams.add(() => {
      session.close();
      out.end();
    });
    // A watch stream outlives the request body: it ends when the client goes away (or at shutdown).
    reply.raw.on('close', () => {
      release();
      session.close();
    });
    endsAtClientFin(reply.raw);
    readClientStream(ctx, req, method.requestType, {
      message: (m) => session.request(asWatch(m)),
      refused: (s) => {
        session.close();
        out.reject(s);
      },
      halfClose: () => undefined,
    });
  };
}

export function keepAliveHandler(ctx: GatewayContext, method: MethodInfo): Handler {
  return async (req, reply) => {
    reply.hijack();
    const out = new ResultStream(reply, ctx.codec, method.responseType);
    if (refusedOnLearner(ctx, method, undefined, out)) return;
    // One answer per request, in order; the answer ends after the last one once the body ended.
    let chain = Promise.resolve();
    let failed = false;
    reply.raw.on('close', ctx.streams.add(() => out.end()));
    endsAtClientFin(reply.raw);
    readClientStream(ctx, req, method.requestType, {
      message: (m) => {
        chain = chain.then(async () => {
          if (failed || out.closed) return;
          try {
            out.send(await ctx.backend.leaseKeepAlive(asKeepAlive(m)));
          } catch (e) {
            failed = true;
            out.fail(statusOf(e, 'etcd', ctx.log));
          }
        });
      },
      refused: (s) => out.reject(s),
      halfClose: () => void chain.then(() => out.end()),
    });
  };
}

/** Snapshot and Observe: the body is one request, decoded like a unary one. */
function serverStream(
  ctx: GatewayContext, method: MethodInfo, flavor: 'etcd' | 'recipe',
  open: (m: Message, signal: AbortSignal, auth: CallContext) => AsyncIterable<unknown>,
): Handler {
  return async (req, reply) => {
    const body = await readBody(req.raw, ctx.bodyMaxBytes);
    if (body.kind === 'tooLarge') return sendGrpcError(reply, tooLarge(body.length, ctx.grpcMaxBytes));
    let msg: Message;
    try {
      msg = ctx.codec.decodeBody(method.requestType, body.bytes);
    } catch (e) {
      if (e instanceof DecodeError) return sendGatewayError(reply, { code: GrpcCode.INVALID_ARGUMENT, message: e.message });
      throw e;
    }
    reply.hijack();
    const out = new ResultStream(reply, ctx.codec, method.responseType);
    if (refusedOnLearner(ctx, method, msg, out)) return;
    const ac = new AbortController();
    reply.raw.on('close', () => ac.abort());
    endsAtClientFin(reply.raw);
    // Observe ends at shutdown; a Snapshot is left to finish (a cut one would look whole).
    if (flavor === 'recipe') {
      reply.raw.on('close', ctx.streams.add(() => {
        ac.abort();
        out.end();
      }));
    }
    try {
      for await (const resp of open(msg, ac.signal, authOf(req.headers))) {
        if (out.closed) return;
        if (!out.send(resp)) await out.drained();
      }
      out.end();
    } catch (e) {
      if (!ac.signal.aborted) out.fail(statusOf(e, flavor, ctx.log));
    }
  };
}

export function snapshotHandler(ctx: GatewayContext, method: MethodInfo): Handler {
  return serverStream(ctx, method, 'etcd', (m, _signal, auth) => ctx.backend.snapshot(asSnapshot(m), auth));
}

export function observeHandler(ctx: GatewayContext, method: MethodInfo): Handler {
  return serverStream(ctx, method, 'recipe', (m, signal, auth) => observe(asCaller(ctx.backend, auth), asLeader(m), signal));
}
