// An in-process server for gateway tests: the same composition as the binary (src/server.ts),
// on a free loopback port, with a temporary data dir. With TEST_UPSTREAM=1 in the environment
// the server runs in gateway mode instead, in front of a fresh real 3-member etcd 3.4 cluster
// (started here, stopped on close): the same suites then check the upstream backend.
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import type { EmbeddedBackend } from '../../src/core/server.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { UpstreamBackend } from '../../src/upstream/backend.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

export interface GatewayServer {
  /** The embedded core (embedded mode only: tests that use it do not run in upstream mode). */
  readonly backend: EmbeddedBackend;
  readonly upstream: UpstreamBackend | undefined;
  /** The real cluster behind the server in upstream mode. */
  readonly cluster: EtcdCluster | undefined;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  close(): Promise<void>;
}

/** Whether the suites run against gateway mode (TEST_UPSTREAM=1). */
export const UPSTREAM_MODE = process.env.TEST_UPSTREAM === '1';

/**
 * dataDir: reuse that data dir (a restart; it is kept on close), else a fresh temporary one.
 * opts.logger: the server's logger (default silent; the fuzz tests collect its error lines).
 */
export async function startGateway(extraArgs: string[] = [], dataDir?: string, opts: { upstream?: boolean; logger?: Logger } = {}): Promise<GatewayServer> {
  const dir = dataDir ?? await makeTempDir('gw-');
  const cluster = (opts.upstream ?? UPSTREAM_MODE) ? await startEtcdCluster(3) : undefined;
  const upstreamArgs = cluster !== undefined ? ['--endpoints', cluster.endpoints] : [];
  const r = loadConfig(['--data-dir', dir, '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:2379', ...upstreamArgs, ...extraArgs], {});
  if (r.kind !== 'run') throw new Error('bad test config');
  const server = await startServer(r.config, opts.logger ?? pino({ level: 'silent' }));
  return {
    backend: server.backend as EmbeddedBackend,
    upstream: cluster !== undefined ? server.backend as UpstreamBackend : undefined,
    cluster,
    url: `http://127.0.0.1:${server.listeners[0]!.port}`,
    async close() {
      await server.close();
      await cluster?.stop();
      if (dataDir === undefined) await removeTempDir(dir);
    },
  };
}

/** The composition from exactly these flags (plus a free loopback listener): gateway-mode tests. */
export async function startServerWith(args: string[]): Promise<RunningServer & { url: string }> {
  const r = loadConfig(['--listen-client-urls', 'http://127.0.0.1:0', ...args], {});
  if (r.kind !== 'run') throw new Error('bad test config');
  const s = await startServer(r.config, pino({ level: 'silent' }));
  return Object.assign(s, { url: `http://127.0.0.1:${s.listeners[0]!.port}` });
}
