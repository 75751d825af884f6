// The whole server from a Config: backend, gRPC services, HTTP routes and one listener per client
// URL. main.ts runs it from the command line; tests run the same composition in-process.
import * as grpc from '@grpc/grpc-js';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { readFileSync } from 'node:fs';
import { EmbeddedBackend } from './core/server.js';
import { addRecipeServices } from './grpc/recipes.js';
import { addHealthService, addServices } from './grpc/services.js';
import { docsRoutes, gatewayOpenApiDocument } from './http/docs.js';
import { opsRoutes } from './http/ops.js';
import { v2Keys } from './http/v2/index.js';
import { v3Gateway } from './http/v3gw/index.js';
import { listenClient, type ClientListener } from './listener/index.js';
import { UpstreamBackend } from './upstream/backend.js';
import { systemClock } from './util/clock.js';

export interface RunningServer {
  /** The embedded core, or (--endpoints given: gateway mode) the client of a real etcd cluster. */
  readonly backend: EmbeddedBackend | UpstreamBackend;
  readonly app: FastifyInstance;
  /** One per --listen-client-urls entry, with the port actually bound. */
  readonly listeners: readonly ClientListener[];
  close(): Promise<void>;
}

function backendOf(cfg: Config): EmbeddedBackend | UpstreamBackend {
  if (cfg.endpoints.length > 0) {
    const file = (p: string): Buffer | undefined => (p === '' ? undefined : readFileSync(p));
    const t = cfg.upstreamTls;
    return new UpstreamBackend({
      endpoints: cfg.endpoints,
      timeoutMs: cfg.upstreamTimeoutMs,
      tls: t === undefined ? undefined : { ca: file(t.cacert), cert: file(t.cert), key: file(t.key) },
      maxRequestBytes: cfg.maxRequestBytes,
      watchBacklogBytesMax: cfg.watchBacklogBytesMax,
      user: cfg.upstreamUser,
    });
  }
  return new EmbeddedBackend({
    dataDir: cfg.dataDir,
    name: cfg.name,
    advertisePeerUrls: cfg.advertisePeerUrls,
    advertiseClientUrls: cfg.advertiseClientUrls,
    initialClusterToken: cfg.initialClusterToken,
    maxTxnOps: cfg.maxTxnOps,
    maxRequestBytes: cfg.maxRequestBytes,
    electionTimeoutMs: cfg.electionTimeoutMs,
    watchProgressNotifyIntervalMs: cfg.watchProgressNotifyIntervalMs,
    watchBacklogBytesMax: cfg.watchBacklogBytesMax,
    clock: systemClock,
  });
}

export async function startServer(cfg: Config, log: Logger): Promise<RunningServer> {
  const backend = backendOf(cfg);

  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': cfg.maxRequestBytes + 512 * 1024,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.max_concurrent_streams': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc-node.max_session_memory': 2 ** 30,
    'grpc.enable_channelz': 0,
  });
  addServices(grpcServer, backend, log);
  addRecipeServices(grpcServer, backend, log);
  addHealthService(grpcServer, backend);

  // Fastify logs every request at info; etcd does not. Keep that noise (and its cost) for debug.
  const httpLog = log.child({ component: 'http' }, { level: log.level === 'debug' ? 'debug' : 'warn' });
  const app = Fastify({ loggerInstance: httpLog as FastifyBaseLogger });
  opsRoutes(app, backend);
  docsRoutes(app, gatewayOpenApiDocument());
  await app.register(v3Gateway, { backend, maxRequestBytes: cfg.maxRequestBytes });
  await app.register(v2Keys, { backend, v2Prefix: cfg.v2Prefix });
  await app.ready();

  const listeners: ClientListener[] = [];
  for (const url of cfg.listenClientUrls) listeners.push(await listenClient(url, grpcServer, app.server));

  return {
    backend,
    app,
    listeners,
    async close() {
      await Promise.all(listeners.map((l) => l.close()));
      grpcServer.forceShutdown();
      await app.close();
      await backend.close();
    },
  };
}
