// Operator endpoints on the client port: /health, /livez and /readyz as etcd 3.5 answers them
// (the checks themselves live in src/backend/health.ts), /metrics, and /version as etcd 3.4.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkHealth, livezChecks, readyzChecks, runChecks } from '../backend/health.js';
import type { V3Backend } from '../backend/index.js';
import { CLUSTER_VERSION, SERVER_VERSION } from '../core/server.js';
import type { ServerMetrics } from '../metrics/index.js';

type Query = Record<string, string | string[] | undefined>;

/** Every non-empty value of a repeated query parameter (Go's r.URL.Query()[name]). */
function querySet(req: FastifyRequest, name: string): Set<string> {
  const v = (req.query as Query)[name];
  const all = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return new Set(all.filter((s) => s !== ''));
}

const TEXT = 'text/plain; charset=utf-8';

/** Go's http.Error: text/plain, nosniff, the message plus a newline. */
function httpError(reply: FastifyReply, code: number, message: string): string {
  reply.code(code).type(TEXT).header('x-content-type-options', 'nosniff');
  return message + '\n';
}

/** etcd's health paths accept GET only (405 with Allow: GET otherwise, HEAD included). */
function getOnly(app: FastifyInstance, path: string, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<string>): void {
  app.get(path, { exposeHeadRoute: false }, handler);
  app.route({
    method: ['HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
    url: path,
    handler: async (_req, reply) => {
      reply.header('allow', 'GET');
      return httpError(reply, 405, 'Method Not Allowed');
    },
  });
}

/** /livez or /readyz: the root runs every check (minus ?exclude=), /<root>/<check> runs one. */
function checkRoutes(app: FastifyInstance, backend: V3Backend, root: string, checks: typeof livezChecks): void {
  const answer = async (req: FastifyRequest, reply: FastifyReply, names: readonly string[]): Promise<string> => {
    const r = await runChecks(backend, checks, names);
    if (!r.ok) return httpError(reply, 503, r.reason);
    reply.type(TEXT).header('x-content-type-options', 'nosniff');
    return (Object.hasOwn(req.query as Query, 'verbose') ? r.reason : '') + 'ok\n';
  };
  getOnly(app, root, async (req, reply) => {
    // As etcd, excluding a check that does not exist is not an error.
    const excluded = querySet(req, 'exclude');
    return answer(req, reply, [...checks.keys()].filter((n) => !excluded.has(n)));
  });
  for (const name of checks.keys()) getOnly(app, `${root}/${name}`, (req, reply) => answer(req, reply, [name]));
}

export function opsRoutes(app: FastifyInstance, backend: V3Backend, metrics: ServerMetrics): void {
  // etcd 3.5's /health: {"health","reason"} (3.4 sent only "health"; the extra field is what
  // tells an operator why). ?exclude=NOSPACE ignores that alarm; ?serializable=true skips the
  // leader check (is this member alive, rather than can the cluster serve).
  getOnly(app, '/health', async (req, reply) => {
    const serializable = (req.query as Query).serializable === 'true';
    const h = await checkHealth(backend, { exclude: querySet(req, 'exclude'), serializable });
    metrics.healthChecked(h.ok);
    const body = JSON.stringify({ health: String(h.ok), reason: h.reason });
    if (!h.ok) return httpError(reply, 503, body);
    reply.type(TEXT);
    return body;
  });
  checkRoutes(app, backend, '/livez', livezChecks);
  checkRoutes(app, backend, '/readyz', readyzChecks);

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.contentType);
    return metrics.scrape();
  });

  app.get('/version', async (_req, reply) => {
    reply.type('application/json');
    return JSON.stringify({ etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION });
  });
}
