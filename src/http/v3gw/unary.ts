// One unary gateway route: read the body, decode it, check the gRPC size limit, call, encode.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DecodeError, type MethodInfo } from '../../gateway/index.js';
import type { UnaryCall } from './calls.js';
import { authOf, type GatewayContext } from './context.js';
import { GrpcCode, learnerStatus, statusOf, tooLarge, unimplemented } from './errors.js';
import { readBody } from './body.js';
import { sendGatewayError, sendGrpcError, sendOk } from './replies.js';

/** An AbortSignal that fires if the client goes away before the answer is written. */
function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

export function unaryHandler(ctx: GatewayContext, method: MethodInfo, call: UnaryCall | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const body = await readBody(req.raw, ctx.bodyMaxBytes);
    if (body.kind === 'tooLarge') return sendGrpcError(reply, tooLarge(body.length, ctx.grpcMaxBytes));
    let msg;
    try {
      msg = ctx.codec.decodeBody(method.requestType, body.bytes);
    } catch (e) {
      if (e instanceof DecodeError) return sendGatewayError(reply, { code: GrpcCode.INVALID_ARGUMENT, message: e.message });
      throw e;
    }
    if (call === undefined) return sendGrpcError(reply, unimplemented(method.grpcPath));
    // The proto size can only pass the limit if the JSON text is at least about half as long.
    if (body.bytes.length * 2 > ctx.grpcMaxBytes) {
      const size = call.encodedBytes(msg);
      if (size > ctx.grpcMaxBytes) return sendGrpcError(reply, tooLarge(size, ctx.grpcMaxBytes));
    }
    // As etcd's gRPC server: the size limit while receiving, then the interceptor's learner check.
    const refused = learnerStatus(ctx.backend, method.grpcPath, msg, ctx.log);
    if (refused !== undefined) return sendGrpcError(reply, refused);
    let res: unknown;
    try {
      res = await call.invoke(msg, { backend: ctx.backend, auth: authOf(req.headers), signal: clientGone(reply) });
    } catch (e) {
      return sendGrpcError(reply, statusOf(e, call.errors, ctx.log));
    }
    sendOk(reply, ctx.codec.encode(method.responseType, res));
  };
}
