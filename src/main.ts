#!/usr/bin/env node
// Composition root: config -> backend -> gRPC + HTTP -> one listener per client URL.
import * as grpc from '@grpc/grpc-js';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { snapshotCommand } from './cli/snapshot.js';
import { FlagError, helpText, loadConfig, type Config } from './config/index.js';
import { EmbeddedBackend, SERVER_VERSION } from './core/server.js';
import { addRecipeServices } from './grpc/recipes.js';
import { addHealthService, addServices } from './grpc/services.js';
import { opsRoutes } from './http/ops.js';
import { listenClient, type ClientListener } from './listener/index.js';
import { systemClock } from './util/clock.js';

async function run(cfg: Config): Promise<void> {
  const log = pino({ level: cfg.logLevel }, pino.destination(2));
  const backend = new EmbeddedBackend({
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

  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': cfg.maxRequestBytes + 512 * 1024,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.max_concurrent_streams': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc-node.max_session_memory': 2 ** 30,
  });
  addServices(grpcServer, backend, log);
  addRecipeServices(grpcServer, backend, log);
  addHealthService(grpcServer, backend);

  const app = Fastify({ loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger });
  opsRoutes(app, backend);
  await app.ready();

  const listeners: ClientListener[] = [];
  for (const url of cfg.listenClientUrls) {
    listeners.push(await listenClient(url, grpcServer, app.server));
    log.info({ url: url.href }, 'serving client traffic (gRPC, HTTP) on one port');
  }
  log.info({ name: cfg.name, dataDir: cfg.dataDir, memberId: backend.memberId.toString(16), clusterId: backend.clusterId.toString(16) }, 'ready to serve client requests');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    void (async () => {
      await Promise.all(listeners.map((l) => l.close()));
      grpcServer.forceShutdown();
      await app.close();
      await backend.close();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

try {
  const argv = process.argv.slice(2);
  if (argv[0] === 'snapshot') {
    process.stdout.write(snapshotCommand(argv.slice(1)) + '\n');
    process.exit(0);
  }
  const r = loadConfig(argv, process.env);
  if (r.kind === 'help') {
    process.stdout.write(helpText() + '\n');
  } else if (r.kind === 'version') {
    process.stdout.write(`etcd-gateway Version: ${process.env.npm_package_version ?? '0.1.0'}\netcd API Version: ${SERVER_VERSION}\nNode Version: ${process.version}\n`);
  } else {
    await run(r.config);
  }
} catch (e) {
  if (e instanceof FlagError) {
    process.stderr.write(`etcd-gateway: ${e.message}\nRun 'etcd-gateway --help' for the flags.\n`);
    process.exit(2);
  }
  throw e;
}
