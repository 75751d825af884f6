// Operator endpoints on the client port: /health and /version, as etcd 3.4 answers them.
import type { FastifyInstance } from 'fastify';
import type { V3Backend } from '../backend/index.js';
import { CLUSTER_VERSION, SERVER_VERSION } from '../core/server.js';

export function opsRoutes(app: FastifyInstance, backend: V3Backend): void {
  app.get('/health', async (_req, reply) => {
    const h = backend.health();
    reply.code(h.ok ? 200 : 503).type('text/plain; charset=utf-8');
    return JSON.stringify({ health: String(h.ok) });
  });
  app.get('/version', async (_req, reply) => {
    reply.type('application/json');
    return JSON.stringify({ etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION });
  });
}
