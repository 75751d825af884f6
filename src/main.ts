#!/usr/bin/env node
// Command line: flags -> Config -> the server; signals stop it cleanly.
import { pino } from 'pino';
import { migrateCommand } from './cli/migrate.js';
import { snapshotCommand } from './cli/snapshot.js';
import { FlagError, helpText, loadConfig, type Config } from './config/index.js';
import { SERVER_VERSION } from './core/server.js';
import { startServer } from './server.js';

async function run(cfg: Config): Promise<void> {
  const log = pino({ level: cfg.logLevel }, pino.destination(2));
  const server = await startServer(cfg, log);
  for (const l of server.listeners) log.info({ port: l.port }, 'serving client traffic (gRPC, HTTP) on one port');
  const { backend } = server;
  log.info({ name: cfg.name, dataDir: cfg.dataDir, memberId: backend.memberId.toString(16), clusterId: backend.clusterId.toString(16) }, 'ready to serve client requests');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    void server.close().then(() => process.exit(0));
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
  if (argv[0] === 'migrate') process.exit(await migrateCommand(argv.slice(1)));
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
