// In-flight HTTP requests, for a graceful shutdown: counted from the moment Fastify sees a request
// until its response closes (hijacked streams included), so the shutdown can wait for the count to
// reach zero before it closes connections. While draining, responses carry `Connection: close`
// so keep-alive clients do not send another request on a connection that is about to go.
import type { FastifyInstance } from 'fastify';

export interface HttpDrain {
  /** Starts draining; resolves when no request is in flight. */
  drain(): Promise<void>;
}

/** Call before registering the routes (the hook applies to routes registered after it). */
export function trackInflight(app: FastifyInstance): HttpDrain {
  let inflight = 0;
  let draining = false;
  let idle: (() => void) | undefined;
  app.addHook('onRequest', (_req, reply, done) => {
    inflight++;
    if (draining) reply.header('connection', 'close');
    reply.raw.once('close', () => {
      inflight--;
      if (inflight === 0) idle?.();
    });
    done();
  });
  return {
    drain() {
      draining = true;
      if (inflight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle = resolve;
      });
    },
  };
}
