// An in-process server for gateway tests: the same composition as the binary (src/server.ts),
// on a free loopback port, with a temporary data dir.
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import type { EmbeddedBackend } from '../../src/core/server.js';
import { startServer } from '../../src/server.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

export interface GatewayServer {
  readonly backend: EmbeddedBackend;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  close(): Promise<void>;
}

/** dataDir: reuse that data dir (a restart; it is kept on close), else a fresh temporary one. */
export async function startGateway(extraArgs: string[] = [], dataDir?: string): Promise<GatewayServer> {
  const dir = dataDir ?? await makeTempDir('gw-');
  const r = loadConfig(['--data-dir', dir, '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:2379', ...extraArgs], {});
  if (r.kind !== 'run') throw new Error('bad test config');
  const server = await startServer(r.config, pino({ level: 'silent' }));
  return {
    backend: server.backend,
    url: `http://127.0.0.1:${server.listeners[0]!.port}`,
    async close() {
      await server.close();
      if (dataDir === undefined) await removeTempDir(dir);
    },
  };
}
