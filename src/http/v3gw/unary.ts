// One unary gateway route: read the body, decode it, check the gRPC size limit, call, encode.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DecodeError, type Message, type MethodInfo } from '../../gateway/index.js';
import type { UnaryCall } from './calls.js';
import { authOf, type GatewayContext } from './context.js';
import { GrpcCode, learnerStatus, statusOf, tooLarge, unimplemented } from './errors.js';
import { readBody } from './body.js';
import { sendGatewayError, sendGrpcError, sendOk } from './replies.js';
import { endsAtClientFin } from '../half-close.js';

/**
 * An AbortSignal that fires if the client goes away before the answer is written. Made on first
 * use: only the blocking calls (Lock, Campaign) read it, and an AbortSignal plus a close listener
 * per request cost ~4% of a put's main-thread time.
 */
function clientGone(reply: FastifyReply): () => AbortSignal {
  let signal: AbortSignal | undefined;
  return () => {
    if (signal !== undefined) return signal;
    const ac = new AbortController();
    signal = ac.signal;
    const res = reply.raw;
    if (res.destroyed && !res.writableFinished) ac.abort();
    else res.on('close', () => { if (!res.writableFinished) ac.abort(); });
    endsAtClientFin(res); // a blocking call ends at the client's FIN, as etcd's
    return signal;
  };
}

type Decoded =
  | { readonly kind: 'ok'; readonly msg: Message; readonly bodyBytes: number }
  | { readonly kind: 'tooLarge'; readonly length: number }
  | { readonly kind: 'bad'; readonly message: string };

/**
 * Reads and decodes the body in a function of its own: the body buffer is referenced from no
 * frame that outlives decoding (a large put's body would otherwise stay alive, with the handler's
 * suspended frame, until the answer is written), and once decoded it goes back to the pool.
 */
async function readMessage(ctx: GatewayContext, method: MethodInfo, req: FastifyRequest): Promise<Decoded> {
  const body = await readBody(req.raw, ctx.bodyMaxBytes, ctx.bodies);
  if (body.kind === 'tooLarge') return body;
  let decoded: Decoded;
  try {
    decoded = { kind: 'ok', msg: ctx.codec.decodeBody(method.requestType, body.bytes), bodyBytes: body.bytes.length };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    decoded = { kind: 'bad', message: e.message };
  }
  // The message and the error text are copies: nothing refers to the body's bytes any more.
  ctx.bodies.release(body.bytes);
  return decoded;
}

export function unaryHandler(ctx: GatewayContext, method: MethodInfo, call: UnaryCall | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const decoded = await readMessage(ctx, method, req);
    if (decoded.kind === 'tooLarge') return sendGrpcError(reply, tooLarge(decoded.length, ctx.grpcMaxBytes));
    if (decoded.kind === 'bad') return sendGatewayError(reply, { code: GrpcCode.INVALID_ARGUMENT, message: decoded.message });
    const msg = decoded.msg;
    if (call === undefined) return sendGrpcError(reply, unimplemented(method.grpcPath));
    // The proto size can only pass the limit if the JSON text is at least about half as long.
    if (decoded.bodyBytes * 2 > ctx.grpcMaxBytes) {
      const size = call.encodedBytes(msg);
      if (size > ctx.grpcMaxBytes) return sendGrpcError(reply, tooLarge(size, ctx.grpcMaxBytes));
    }
    // As etcd's gRPC server: the size limit while receiving, then the interceptor's learner check.
    const refused = learnerStatus(ctx.backend, method.grpcPath, msg, ctx.log);
    if (refused !== undefined) return sendGrpcError(reply, refused);
    let res: unknown;
    try {
      const signal = clientGone(reply);
      res = await call.invoke(msg, { backend: ctx.backend, auth: authOf(req.headers), get signal() { return signal(); } });
    } catch (e) {
      return sendGrpcError(reply, statusOf(e, call.errors, ctx.log));
    }
    sendOk(reply, ctx.codec.encode(method.responseType, res));
  };
}
