// The etcd v3 HTTP/JSON gateway as a Fastify plugin, as etcd 3.4 serves it on the client port:
// POST /v3/... (and /v3beta/..., rewritten to /v3/), every body parsed as JSON whatever its
// Content-Type, etcd's CORS headers on every response and 200 for every OPTIONS (etcd's access
// controller wraps the whole client port), and Go's texts for unknown paths and wrong methods.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { V3Backend } from '../../backend/index.js';
import { GatewayCodec, gatewayRoutes, type MethodInfo } from '../../gateway/index.js';
import { verifiedCommonName } from '../../listener/index.js';
import { redirect, uncleanTarget } from '../go-mux.js';
import { OpenStreams } from '../../util/open-streams.js';
import { BodyPool } from './body.js';
import { unaryCalls } from './calls.js';
import { makeLimits, type GatewayContext } from './context.js';
import { GrpcCode } from './errors.js';
import { sendGatewayError, sendText } from './replies.js';
import { keepAliveHandler, observeHandler, snapshotHandler, watchHandler } from './streams.js';
import { unaryHandler } from './unary.js';

export interface V3GatewayOptions {
  readonly backend: V3Backend;
  /** etcd's --max-request-bytes (default 1572864). */
  readonly maxRequestBytes: number;
  readonly codec?: GatewayCodec;
  /** Where long-lived streams register to be ended at shutdown (default: a private registry). */
  readonly streams?: OpenStreams;
}

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'access-control-allow-headers': 'accept, content-type, authorization',
} as const;

/** Methods answered 405 on a gateway path (OPTIONS is answered 200 by the CORS hook). */
const OTHER_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH'] as const;

/** /v3beta/ is an alias of /v3/ in etcd 3.4; /v3alpha/ is not served. */
const PREFIXES = ['/v3/', '/v3beta/'] as const;

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

function handlerFor(ctx: GatewayContext, method: MethodInfo): Handler {
  switch (method.fullName) {
    case 'etcdserverpb.Watch.Watch': return watchHandler(ctx, method);
    case 'etcdserverpb.Lease.LeaseKeepAlive': return keepAliveHandler(ctx, method);
    case 'etcdserverpb.Maintenance.Snapshot': return snapshotHandler(ctx, method);
    case 'v3electionpb.Election.Observe': return observeHandler(ctx, method);
    default: return unaryHandler(ctx, method, unaryCalls[method.fullName]);
  }
}

/** The routes, in their own scope: its body parser and error handler stay inside. */
async function gatewayRoutesPlugin(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.removeAllContentTypeParsers();
  // Handlers read request.raw themselves (unary bodies whole, client streams as they arrive).
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  app.setErrorHandler((err, _req, reply) => {
    ctx.log.error({ err }, 'v3 gateway request failed');
    sendGatewayError(reply, { code: GrpcCode.UNKNOWN, message: err instanceof Error ? err.message : String(err) });
  });
  const methodNotAllowed = async (_req: FastifyRequest, reply: FastifyReply): Promise<void> => sendText(reply, 405, 'Method Not Allowed');
  for (const route of gatewayRoutes) {
    const method = ctx.codec.schema.method(route.method);
    const handler = handlerFor(ctx, method);
    for (const prefix of PREFIXES) {
      const url = prefix + route.path.slice('/v3/'.length);
      app.post(url, handler);
      app.route({ method: [...OTHER_METHODS], url, handler: methodNotAllowed });
    }
  }
}

async function v3GatewayPlugin(app: FastifyInstance, opts: V3GatewayOptions): Promise<void> {
  const ctx: GatewayContext = {
    backend: opts.backend,
    codec: opts.codec ?? new GatewayCodec(),
    log: app.log,
    ...makeLimits(opts.maxRequestBytes),
    streams: opts.streams ?? new OpenStreams(),
    bodies: new BodyPool(),
  };
  // Callback style: an async hook costs every request a promise and a microtask turn.
  app.addHook('onRequest', (req, reply, done) => {
    void reply.headers(CORS_HEADERS);
    if (req.method === 'OPTIONS') {
      void reply.code(200).send();
      return; // answered: the chain stops here
    }
    // etcd 3.4 does not let a gateway request run as its certificate's Common Name (its gateway
    // reaches the gRPC server with the server's own certificate): with auth on, a /v3/ request
    // over a verified client certificate that has a CN is refused outright, in these words.
    if (PREFIXES.some((p) => req.url.startsWith(p)) && opts.backend.authStatus?.().enabled === true && verifiedCommonName(req.raw.socket) !== undefined) {
      sendText(reply, 400, 'CommonName of client sending a request against gateway will be ignored and not used as expected');
      return; // answered: Fastify runs no handler
    }
    done();
  });
  // No route of the root scope (ops, docs, this not-found handler) reads a body: parsing one there
  // would answer an unknown path that carries a bad JSON body with Fastify's JSON 400 instead of
  // Go's 404 text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  app.setNotFoundHandler(async (req, reply) => {
    // Go's mux cleans before it routes: an unclean path no route took is redirected (a bad
    // escape was answered 400 before routing).
    const target = uncleanTarget(req.url);
    if (target !== undefined) return redirect(reply, req.method, target);
    const path = req.url;
    if (PREFIXES.some((p) => path.startsWith(p))) return sendText(reply, 404, 'Not Found');
    return sendText(reply, 404, '404 page not found');
  });
  await app.register(gatewayRoutesPlugin, ctx);
}

/**
 * Registers the gateway on the root instance (its CORS hook and not-found handler apply to the
 * whole client port, as in etcd): `await app.register(v3Gateway, { backend, maxRequestBytes })`.
 */
export const v3Gateway = Object.assign(v3GatewayPlugin, { [Symbol.for('skip-override')]: true });
