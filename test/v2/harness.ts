// An in-process v2 server for tests: the embedded backend (as src/server.ts builds it) and a Fastify
// app with the v3 gateway (root CORS / not-found handling) and the v2 keys plugin, on a free port.
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { EmbeddedBackend } from '../../src/core/server.js';
import { v2Keys } from '../../src/http/v2/index.js';
import { v3Gateway } from '../../src/http/v3gw/index.js';
import { systemClock } from '../../src/util/clock.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

export interface V2TestServer {
  readonly backend: EmbeddedBackend;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  close(): Promise<void>;
}

export async function startV2Server(prefix?: string): Promise<V2TestServer> {
  const dir = await makeTempDir('v2-');
  const r = loadConfig(['--data-dir', dir, '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:2379'], {});
  if (r.kind !== 'run') throw new Error('bad test config');
  const cfg = r.config;
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
  const app = Fastify({ loggerInstance: pino({ level: 'silent' }) as FastifyBaseLogger });
  await app.register(v3Gateway, { backend, maxRequestBytes: cfg.maxRequestBytes });
  await app.register(v2Keys, { backend, ...(prefix !== undefined ? { v2Prefix: prefix } : {}) });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    backend,
    url: address,
    async close() {
      await app.close();
      await backend.close();
      await removeTempDir(dir);
    },
  };
}
