// In-flight HTTP requests, for a graceful shutdown: tracked from the moment Fastify sees a request
// until its response closes (hijacked streams included), so the shutdown can wait for them before
// it closes connections. Once draining, every response not yet started carries
// `Connection: close`, so keep-alive clients do not send another request on a connection that is
// about to go.
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';

export interface HttpDrain {
  /** Starts draining; resolves when no request is in flight. */
  drain(): Promise<void>;
}

/** Call before registering the routes (the hook applies to routes registered after it). */
export function trackInflight(app: FastifyInstance): HttpDrain {
  const inflight = new Set<ServerResponse>();
  let draining = false;
  let idle: (() => void) | undefined;
  const closeAfter = (res: ServerResponse): void => {
    if (!res.headersSent) res.setHeader('connection', 'close');
  };
  app.addHook('onRequest', (_req, reply, done) => {
    const res = reply.raw;
    inflight.add(res);
    if (draining) closeAfter(res);
    res.once('close', () => {
      inflight.delete(res);
      if (inflight.size === 0) idle?.();
    });
    done();
  });
  return {
    drain() {
      draining = true;
      for (const res of inflight) closeAfter(res);
      if (inflight.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle = resolve;
      });
    },
  };
}
