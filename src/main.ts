#!/usr/bin/env -S node --max-semi-space-size=64
// The V8 flag above is the server's runtime setting (a larger young generation: fewer scavenges
// per request, +6% gateway puts in paired runs; see README "Node flags"). V8 reads it only at
// start-up, so every launcher passes the same flags: npm start, docker/Dockerfile,
// scripts/cluster.mjs and the test helpers (which read them from this line; a test checks the
// others agree).
// Command line: flags -> Config -> the server; signals stop it cleanly.
import { pino } from 'pino';
import { migrateCommand } from './cli/migrate.js';
import { snapshotCommand } from './cli/snapshot.js';
import { FlagError, helpText, loadConfig, type Config } from './config/index.js';
import { SERVER_VERSION } from './core/server.js';
import { createLogger } from './log.js';
import { startServer } from './server.js';

/** How long in-flight requests may take to finish after SIGTERM: under the 10 s that Docker and
 * Kubernetes wait before SIGKILL. */
const SHUTDOWN_DRAIN_MS = 5_000;

async function run(cfg: Config, warnings: readonly string[]): Promise<void> {
  const log = createLogger(cfg.logLevel, pino.destination(2));
  for (const w of warnings) log.warn(w);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(cfg, log);
  } catch (err) {
    // A port in use, an unreadable data dir or certificate, a failed join: one fatal log line
    // (as etcd's), then a non-zero exit; nothing half-started keeps the process alive.
    log.fatal({ err }, `cannot start: ${err instanceof Error ? err.message : String(err)}`);
    log.flush?.();
    process.exit(1);
  }
  for (const l of server.listeners) log.info({ port: l.port }, 'serving client traffic (gRPC, HTTP) on one port');
  const { backend } = server;
  log.info({ name: cfg.name, dataDir: cfg.dataDir, memberId: backend.memberId.toString(16), clusterId: backend.clusterId.toString(16) }, 'ready to serve client requests');

  // The first SIGTERM/SIGINT stops gracefully (see RunningServer.close); a second one exits at
  // once with status 1. Acknowledged writes are durable either way: a write is answered only
  // after its commit is fsynced.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, drainMs: SHUTDOWN_DRAIN_MS }, 'shutting down: draining in-flight requests');
    server.close(SHUTDOWN_DRAIN_MS).then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A member removed from its cluster stops, as etcd's does (its data dir must not be reused).
  if ('onRemoved' in backend) {
    backend.onRemoved = () => {
      log.warn({ memberId: backend.memberId.toString(16) }, 'the member has been permanently removed from the cluster; stopping (remove its data dir before it joins again)');
      stop('removed from the cluster');
    };
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

try {
  const argv = process.argv.slice(2);
  if (argv[0] === 'snapshot') {
    process.stdout.write((await snapshotCommand(argv.slice(1))) + '\n');
    process.exit(0);
  }
  if (argv[0] === 'migrate') process.exit(await migrateCommand(argv.slice(1)));
  const r = loadConfig(argv, process.env);
  if (r.kind === 'help') {
    process.stdout.write(helpText() + '\n');
  } else if (r.kind === 'version') {
    process.stdout.write(`etcd-gateway Version: ${process.env.npm_package_version ?? '0.1.0'}\netcd API Version: ${SERVER_VERSION}\nNode Version: ${process.version}\n`);
  } else {
    await run(r.config, r.warnings);
  }
} catch (e) {
  if (e instanceof FlagError) {
    process.stderr.write(`etcd-gateway: ${e.message}\nRun 'etcd-gateway --help' for the flags.\n`);
    process.exit(2);
  }
  throw e;
}
