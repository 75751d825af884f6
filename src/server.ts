// The whole server from a Config: backend, gRPC services, HTTP routes and one listener per client
// URL. main.ts runs it from the command line; tests run the same composition in-process.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config, TlsFilesConfig } from './config/index.js';
import { readFileSync } from 'node:fs';
import { EmbeddedBackend, type JoinInfo } from './core/server.js';
import { fetchMembers, type PeerTls } from './core/rafthttp/transport.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { learnerGate } from './grpc/learner.js';
import { LazyChildLogger } from './log.js';
import { addRecipeServices } from './grpc/recipes.js';
import { routedUrl } from './http/go-mux.js';
import { InstrumentedServer } from './grpc/metrics.js';
import { addHealthService, addServices } from './grpc/services.js';
import { docsRoutes, gatewayOpenApiDocument } from './http/docs.js';
import { trackInflight } from './http/drain.js';
import { clientErrorHandler, frameworkErrors, MAX_HEADER_BYTES } from './http/bad-request.js';
import { opsRoutes } from './http/ops.js';
import { v2Keys } from './http/v2/index.js';
import { v3Gateway } from './http/v3gw/index.js';
import { listenClient, type ClientListener, type ListenerTls } from './listener/index.js';
import { TlsFiles } from './tls/files.js';
import { ensureSelfCert } from './tls/selfcert.js';
import { createMetrics, type ServerMetrics } from './metrics/index.js';
import { UpstreamBackend } from './upstream/backend.js';
import { systemClock } from './util/clock.js';
import { OpenStreams } from './util/open-streams.js';

export interface RunningServer {
  /** The embedded core, or (--endpoints given: gateway mode) the client of a real etcd cluster. */
  readonly backend: EmbeddedBackend | UpstreamBackend;
  readonly metrics: ServerMetrics;
  readonly app: FastifyInstance;
  /** The gRPC server (tests read its directCalls). */
  readonly grpc: InstrumentedServer;
  /** One per --listen-client-urls entry, with the port actually bound. */
  readonly listeners: readonly ClientListener[];
  /** Graceful stop: see the steps in the body. drainMs 0 cuts in-flight requests at once. */
  close(drainMs?: number): Promise<void>;
}

/**
 * A member started with --initial-cluster-state existing and no WAL yet joins a running cluster:
 * it asks the other members listed in --initial-cluster for the member list (GET /members on
 * their peer URLs, as etcd does) and finds itself in it by its peer URLs (MemberAdd put it there).
 */
export async function discoverJoin(cfg: Config, peerTls: PeerTls | undefined): Promise<JoinInfo | undefined> {
  if (cfg.initialClusterState !== 'existing') return undefined;
  const walDir = join(cfg.dataDir, 'member', 'wal');
  if (existsSync(walDir) && readdirSync(walDir).length > 0) return undefined;
  const mine = [...cfg.advertisePeerUrls].sort().join(',');
  const errors: string[] = [];
  for (const m of cfg.initialCluster) {
    if (m.name === cfg.name) continue;
    for (const url of m.peerUrls) {
      try {
        const { clusterIdHex, members } = await fetchMembers(url, peerTls);
        const self = members.find((x) => [...x.peerURLs].sort().join(',') === mine);
        if (self === undefined) throw new Error(`member with peer URLs ${mine} not found in the cluster (add it first with member add)`);
        return {
          memberId: BigInt('0x' + self.id),
          clusterId: BigInt('0x' + clusterIdHex),
          members: members.map((x) => ({ ...x, id: BigInt('0x' + x.id) })),
        };
      } catch (e) {
        errors.push(`${url}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  throw new Error(`cannot join the existing cluster: ${errors.join('; ') || 'no other member in --initial-cluster'}`);
}

/**
 * One side's TLS files, watched for rotation. With auto TLS the self-signed pair is made first
 * (or found from an earlier start). Files that do not load stop the start, as in etcd.
 */
function tlsFiles(t: TlsFilesConfig, side: 'client' | 'peer', log: Logger): TlsFiles {
  if (t.selfCert !== undefined) {
    const made = ensureSelfCert(t.selfCert.dir, t.selfCert.hosts);
    log.info({ cert: made.certFile, key: made.keyFile, hosts: t.selfCert.hosts }, made.created ? `${side} auto TLS: made a self-signed certificate` : `${side} auto TLS: reusing the self-signed certificate`);
  }
  return new TlsFiles(t, { minVersion: 'TLSv1.2', ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}) }, {
    onReload: (files) => log.info({ files }, `${side} TLS: loaded the rotated certificate`),
    onError: (what, err) => log.warn({ err }, `${side} TLS: ${what}`),
  });
}

/** The peer TLS (--peer-cert-file, ...): undefined when no peer URL is https. */
function peerTlsOf(cfg: Config, log: Logger): PeerTls | undefined {
  const t = cfg.peerTls;
  if (t === undefined) return undefined;
  return {
    files: tlsFiles(t, 'peer', log), clientCertAuth: t.clientCertAuth, allowed: { cn: t.allowedCn, hostname: t.allowedHostname },
    insecureSkipVerify: t.selfCert !== undefined,
  };
}

/**
 * The https:// client listeners' TLS, as etcd 3.4 sets it: a client certificate is asked for
 * (and required) only with --client-cert-auth, verified against --trusted-ca-file.
 */
function clientTlsOf(cfg: Config, log: Logger): ListenerTls | undefined {
  const t = cfg.clientTls;
  if (t === undefined) return undefined;
  return {
    files: tlsFiles(t, 'client', log),
    clientCertAuth: t.clientCertAuth,
    allowedHostname: t.allowedHostname,
    onRejected: (reason, remote) => log.warn({ remote }, `rejected connection: ${reason}`),
  };
}

function backendOf(cfg: Config, metrics: ServerMetrics, peerTls: PeerTls | undefined, join?: JoinInfo): EmbeddedBackend | UpstreamBackend {
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
    snapshotCount: cfg.snapshotCount,
    maxRequestBytes: cfg.maxRequestBytes,
    quotaBackendBytes: cfg.quotaBackendBytes,
    autoCompaction: cfg.autoCompaction,
    maxWatchersPerStream: cfg.maxWatchersPerStream,
    electionTimeoutMs: cfg.electionTimeoutMs,
    watchProgressNotifyIntervalMs: cfg.watchProgressNotifyIntervalMs,
    watchBacklogBytesMax: cfg.watchBacklogBytesMax,
    authToken: cfg.authToken,
    authTokenTtlMs: cfg.authTokenTtlMs,
    clock: systemClock,
    onCommitSeconds: (s) => metrics.observeCommitSeconds(s),
    onWalSyncSeconds: (s) => metrics.observeWalFsyncSeconds(s),
    heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    initialCluster: cfg.initialCluster,
    ...(join !== undefined ? { join } : {}),
    ...(cfg.listenPeerUrls !== undefined ? { listenPeerUrls: cfg.listenPeerUrls } : {}),
    ...(peerTls !== undefined ? { peerTls } : {}),
    snapshotCatchupEntries: cfg.snapshotCatchupEntries,
    onPeerRoundTrip: (to, s) => metrics.observePeerRoundTrip(to, s),
    onPeerSnapshot: (d, peer, ok) => metrics.peerSnapshot(d, peer, ok),
  });
}

export async function startServer(cfg: Config, log: Logger): Promise<RunningServer> {
  const metrics = createMetrics();
  // TLS files first: a missing or mismatched certificate stops the start before anything is bound.
  const clientTls = clientTlsOf(cfg, log);
  const peerTls = cfg.endpoints.length > 0 ? undefined : peerTlsOf(cfg, log);
  const backend = backendOf(cfg, metrics, peerTls, cfg.endpoints.length > 0 ? undefined : await discoverJoin(cfg, peerTls));
  if (backend instanceof EmbeddedBackend) {
    metrics.watchCore(backend);
    await backend.listenPeers();
  }
  if (backend instanceof UpstreamBackend) metrics.watchUpstream(backend);

  // Counts every call for grpc_server_started_total / grpc_server_handled_total (grpc/metrics.ts);
  // refuses a learner's calls as etcd 3.4 does (grpc/learner.ts).
  const grpcServer = new InstrumentedServer(metrics, {
    'grpc.max_receive_message_length': cfg.maxRequestBytes + 512 * 1024,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    // Clients queue calls past this on the connection (HTTP/2 SETTINGS); one that does not gets REFUSED_STREAM.
    'grpc.max_concurrent_streams': Math.min(cfg.maxConcurrentStreams, 2 ** 32 - 1),
    'grpc.keepalive_permit_without_calls': 1,
    'grpc-node.max_session_memory': 2 ** 30,
    'grpc.enable_channelz': 0,
  }, learnerGate(backend, log));
  const streams = new OpenStreams();
  if (backend instanceof EmbeddedBackend) {
    backend.onLeaderGone = (leader) => log.warn({ leader }, 'the leader refuses peer connections (its process is gone): not waiting out its lease, electing a new leader');
    backend.onStorageFailure = (err) => log.error({ err }, 'storage failed (WAL or backend write): refusing writes, /health fails; restart once the disk is fixed');
  }
  addServices(grpcServer, backend, log, streams);
  addRecipeServices(grpcServer, backend, log, streams);
  addHealthService(grpcServer, backend, streams);

  // Fastify logs every request at info; etcd does not. Keep that noise (and its cost) for debug.
  const httpLog = log.child({ component: 'http' }, { level: log.level === 'debug' ? 'debug' : 'warn' });
  // Request logs carry req.ip as remoteAddress: the X-Forwarded-For client only when the direct
  // peer is one of --trusted-proxies, the socket's address otherwise.
  const app = Fastify({
    loggerInstance: httpLog as FastifyBaseLogger,
    // A request's child logger is made when the request logs (src/log.ts), not for every request.
    childLoggerFactory: (logger, bindings, opts) => (opts.level !== undefined || opts.serializers !== undefined
      ? logger.child(bindings, opts)
      : new LazyChildLogger(logger as Logger, bindings)),
    trustProxy: cfg.trustedProxies.length > 0 ? [...cfg.trustedProxies] : false,
    http: { maxHeaderSize: MAX_HEADER_BYTES },
    frameworkErrors,
    clientErrorHandler,
    // Go's mux routes on the decoded path: an escaped slash separates segments (go-mux.ts).
    rewriteUrl: (req) => routedUrl(req.url ?? '/'),
  });
  // With the listener's half-open sockets (src/http/half-close.ts): a client's FIN ends the
  // connection after its last answer, not before it.
  (app.server as typeof app.server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const httpDrain = trackInflight(app);
  opsRoutes(app, backend, metrics);
  docsRoutes(app, gatewayOpenApiDocument());
  await app.register(v3Gateway, { backend, maxRequestBytes: cfg.maxRequestBytes, streams });
  await app.register(v2Keys, {
    backend, v2Prefix: cfg.v2Prefix, metrics: metrics.v2, streams,
    guestIsServer: cfg.upstreamUser !== undefined, maxLongPollsPerClient: cfg.maxV2LongPollsPerClient,
    readMirrorBytes: cfg.v2ReadMirrorBytes,
  });
  await app.ready();

  const listeners: ClientListener[] = [];
  for (const url of cfg.listenClientUrls) {
    listeners.push(await listenClient(url, grpcServer, app.server, url.protocol === 'https:' ? clientTls : undefined));
  }
  metrics.watchGrpcBytes({
    grpcBytes: () => listeners.reduce((t, l) => {
      const b = l.grpcBytes();
      return { received: t.received + b.received, sent: t.sent + b.sent };
    }, { received: 0, sent: 0 }),
  });

  return {
    backend,
    metrics,
    app,
    grpc: grpcServer,
    listeners,
    async close(drainMs = 0) {
      // 1. No new connections; 2. watches, keepalives and observers end cleanly (OK status / end
      // of the chunked response); 3. in-flight requests (a waiting Lock too) get up to
      // drainMs to finish (gRPC: GOAWAY, then wait for open calls); 4. whatever is left is cut;
      // 5. the backend waits for its last commit and closes storage.
      for (const l of listeners) l.stopAccepting();
      streams.endAll();
      if (drainMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        const grpcDone = new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
        await Promise.race([
          Promise.all([grpcDone, httpDrain.drain()]),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, drainMs); }),
        ]);
        clearTimeout(timer);
      }
      await Promise.all(listeners.map((l) => l.close()));
      grpcServer.forceShutdown();
      await app.close();
      await backend.close();
    },
  };
}
