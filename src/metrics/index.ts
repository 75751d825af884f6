// Prometheus metrics of one server instance: a registry per server (tests run several servers in
// one process, so nothing goes into prom-client's global registry), etcd's metric names where the
// meaning is the same, and the gateway's own v2 metrics.
//
// Cost model: gauges and counters whose value the core already keeps (revisions, key and watcher
// counts, db size, applied index, op counts) are read once per scrape through `CoreMetricsSource`;
// the hot paths only bump plain numbers there. What the core cannot count itself (commit latency,
// gRPC calls, v2 requests) is observed here through pre-bound label children.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Plain numbers the embedded core keeps anyway; read once per scrape. */
export interface CoreStats {
  readonly hasLeader: boolean;
  readonly isLeader: boolean;
  readonly leaderChanges: number;
  /** Requests committed to the log (no Raft log yet: the same as applied). */
  readonly proposalsCommitted: number;
  readonly proposalsApplied: number;
  /** Proposed and not yet durable. */
  readonly proposalsPending: number;
  readonly proposalsFailed: number;
  readonly dbSizeBytes: number;
  readonly dbSizeInUseBytes: number;
  readonly quotaBackendBytes: number;
  /** Live keys at the current revision. */
  readonly keys: number;
  readonly watchers: number;
  readonly watchStreams: number;
  readonly currentRevision: number;
  readonly compactRevision: number;
  readonly puts: number;
  readonly deletes: number;
  readonly ranges: number;
  readonly txns: number;
  /** The peer transport's counters, per other member (none on a lone member). */
  readonly peers?: readonly PeerTrafficStats[];
}

/** One peer's traffic (rafthttp/transport.ts PeerStats). */
export interface PeerTrafficStats {
  /** member ID, hex */
  readonly id: string;
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly sentFailures: number;
  readonly receivedFailures: number;
  readonly streamMessages: number;
  readonly pipelineMessages: number;
}

export interface CoreMetricsSource {
  metricsStats(): CoreStats;
}

/** Gateway mode's upstream numbers (read at scrape time from the upstream backend). */
export interface UpstreamMetricsSource {
  readonly upstreamWatchers: number;
  readonly upstreamWatchStreams: number;
  readonly readsCoalesced: number;
  readonly keepAliveMessagesSent: number;
}

/** Bytes moved on gRPC connections (read at scrape time from the listeners). */
export interface GrpcBytesSource {
  grpcBytes(): { received: number; sent: number };
}

/** etcd's buckets for etcd_disk_wal_fsync_duration_seconds and backend_commit_duration_seconds:
 * prometheus.ExponentialBuckets(0.001, 2, 14). */
const DISK_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

/** gRPC status codes by number, as go-grpc-prometheus labels them: grpc-go's codes.Code.String()
 * ("Canceled"), not the proto enum names the OpenAPI document lists ("CANCELLED"). */
const GRPC_CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
] as const;

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/**
 * The counts of one gRPC method: `started++` at the start, `handled[code]++` at the end. Plain
 * numbers, copied into the counters at scrape time: a prom-client child's inc() hashes its labels
 * on every call, a cost paid twice per RPC on the hot path.
 */
export interface GrpcMethodMetrics {
  started: number;
  readonly handled: number[];
}

/**
 * The gateway's v2 metrics, for the v2 keys API (src/http/v2, src/v2) to call:
 *
 * - `request(action, code)` once per answered v2 request: `action` is the v2 action name
 *   ("get", "set", "create", "update", "compareAndSwap", "delete", "compareAndDelete", "expire",
 *   "watch", or "members"/"stats"/... for the other routes), `code` the HTTP status sent.
 *   Label children are cached, so calling it per request costs one Map lookup.
 * - `longPollOpened()` when a `?wait=true` (or `stream=true`) request starts waiting; call the
 *   function it returns exactly once when that request ends (event sent, timeout, client gone).
 * - `sharedWatchOpened()` when one shared upstream/backend watch is created for many v2 waiters;
 *   it returns `{ subscribed(), unsubscribed(), closed() }`: call `subscribed()`/`unsubscribed()`
 *   as waiters join and leave that watch and `closed()` once when it is torn down. The gauges
 *   `etcd_gateway_v2_shared_watches` and `etcd_gateway_v2_shared_watch_subscribers` then give the
 *   fan-out (subscribers / watches) without one series per watch.
 * - `readMirror(stats)` once, in gateway mode with the v2 read mirror: its numbers are read at
 *   scrape time (`etcd_gateway_v2_mirror_*`).
 */
export interface V2Metrics {
  request(action: string, code: number): void;
  longPollOpened(): () => void;
  sharedWatchOpened(): { subscribed(): void; unsubscribed(): void; closed(): void };
  readMirror(stats: () => ReadMirrorStats): void;
}

/** What the v2 read mirror (src/upstream/mirror.ts) reports. */
export interface ReadMirrorStats {
  /** Reads answered from the copy, and sent to the cluster. */
  readonly served: number;
  readonly upstream: number;
  /** Loads started (the first, and one per drop). */
  readonly loads: number;
  /** What the copy costs (keys, values, 512 per key) and its revision (0: no copy). */
  readonly bytes: number;
  readonly revision: bigint;
}

export interface ServerMetrics {
  /** Observes one storage commit (enqueue to durable, fsync included), in seconds. */
  observeCommitSeconds(seconds: number): void;
  /** Observes one WAL fdatasync, in seconds. */
  observeWalFsyncSeconds(seconds: number): void;
  /** Observes one peer probe's round trip, in seconds; `to` is the peer's member ID (hex). */
  observePeerRoundTrip(to: string, seconds: number): void;
  /** Counts a snapshot sent to / received from a peer (etcd_network_snapshot_{send,receive}_{success,failures}). */
  peerSnapshot(direction: 'send' | 'receive', peer: string, ok: boolean): void;
  /** Reads the core's numbers at scrape time. */
  watchCore(source: CoreMetricsSource): void;
  /** Reads gateway mode's upstream numbers at scrape time. */
  watchUpstream(source: UpstreamMetricsSource): void;
  /** Reads gRPC connection byte counts at scrape time. */
  watchGrpcBytes(source: GrpcBytesSource): void;
  /** The pre-bound counters of one gRPC method (created with all codes at 0 on first use, as
   * go-grpc-prometheus initializes them). */
  grpcMethod(path: string, type: GrpcType): GrpcMethodMetrics;
  readonly v2: V2Metrics;
  /** Counts one /health answer (etcd_server_health_success / _failures). */
  healthChecked(ok: boolean): void;
  /** The text exposition of every metric. */
  scrape(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsOptions {
  /** process_* and nodejs_* metrics (on by default; tests starting many servers may turn them off). */
  readonly defaultMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  // --- core: read once per scrape ---
  let core: CoreMetricsSource | undefined;
  let snapshot: CoreStats | undefined;
  /** One stats read per scrape, shared by every collect() of that scrape. */
  const stats = (): CoreStats | undefined => (snapshot ??= core?.metricsStats());

  const gauge = (name: string, help: string, read: (s: CoreStats) => number): void => {
    new Gauge({
      name, help, registers,
      collect() {
        const s = stats();
        if (s !== undefined) this.set(read(s));
      },
    });
  };
  /** A counter whose running total the core keeps: exposed as that total. */
  const total = (name: string, help: string, read: (s: CoreStats) => number): void => {
    new Counter({
      name, help, registers,
      collect() {
        const s = stats();
        if (s === undefined) return;
        this.reset();
        this.inc(read(s));
      },
    });
  };

  // --- gateway mode: read once per scrape from the upstream backend ---
  let upstream: UpstreamMetricsSource | undefined;
  const upstreamGauge = (name: string, help: string, read: (u: UpstreamMetricsSource) => number): void => {
    new Gauge({ name, help, registers, collect() { if (upstream !== undefined) this.set(read(upstream)); } });
  };
  const upstreamTotal = (name: string, help: string, read: (u: UpstreamMetricsSource) => number): void => {
    new Counter({ name, help, registers, collect() { if (upstream === undefined) return; this.reset(); this.inc(read(upstream)); } });
  };
  upstreamGauge('etcd_gateway_upstream_watchers', 'Watchers open on the upstream cluster (local watchers with the same key, range and options share one).', (u) => u.upstreamWatchers);
  upstreamGauge('etcd_gateway_upstream_watch_streams', 'Watch streams open to the upstream cluster (one per auth token).', (u) => u.upstreamWatchStreams);
  upstreamTotal('etcd_gateway_upstream_reads_coalesced_total', 'Reads answered from a read-only txn shared with other reads.', (u) => u.readsCoalesced);
  upstreamTotal('etcd_gateway_upstream_keepalives_sent_total', 'Lease keep-alive messages sent upstream (concurrent keep-alives of one lease share one).', (u) => u.keepAliveMessagesSent);

  gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', (s) => Number(s.hasLeader));
  gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', (s) => Number(s.isLeader));
  total('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', (s) => s.leaderChanges);
  // etcd exposes these two as gauges, despite the _total suffix.
  gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', (s) => s.proposalsCommitted);
  gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', (s) => s.proposalsApplied);
  gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', (s) => s.proposalsPending);
  total('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', (s) => s.proposalsFailed);
  gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.', (s) => s.quotaBackendBytes);
  gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', (s) => s.dbSizeBytes);
  gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', (s) => s.dbSizeInUseBytes);
  gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.', (s) => s.keys);
  gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', (s) => s.watchers);
  gauge('etcd_debugging_mvcc_watch_stream_total', 'Total number of watch streams.', (s) => s.watchStreams);
  gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', (s) => s.currentRevision);
  gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', (s) => s.compactRevision);
  total('etcd_mvcc_put_total', 'Total number of puts seen by this member.', (s) => s.puts);
  total('etcd_mvcc_delete_total', 'Total number of deletes seen by this member.', (s) => s.deletes);
  total('etcd_mvcc_range_total', 'Total number of ranges seen by this member.', (s) => s.ranges);
  total('etcd_mvcc_txn_total', 'Total number of txns seen by this member.', (s) => s.txns);

  // --- peers: etcd's traffic counters (To / From: the peer's member ID), and ours by channel ---
  const peerTotal = (name: string, help: string, label: 'To' | 'From', read: (p: PeerTrafficStats) => number): void => {
    new Counter({
      name, help, labelNames: [label], registers,
      collect() {
        const peers = stats()?.peers;
        if (peers === undefined) return;
        this.reset();
        for (const p of peers) this.inc({ [label]: p.id }, read(p));
      },
    });
  };
  peerTotal('etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', 'To', (p) => p.sentBytes);
  peerTotal('etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', 'From', (p) => p.receivedBytes);
  peerTotal('etcd_network_peer_sent_failures_total', 'The total number of send failures from peers.', 'To', (p) => p.sentFailures);
  peerTotal('etcd_network_peer_received_failures_total', 'The total number of receive failures from peers.', 'From', (p) => p.receivedFailures);
  new Counter({
    name: 'etcd_gateway_peer_messages_sent_total', help: 'Raft messages sent to peers, by channel: stream (long-lived connection) or pipeline (batched POSTs).',
    labelNames: ['To', 'channel'], registers,
    collect() {
      const peers = stats()?.peers;
      if (peers === undefined) return;
      this.reset();
      for (const p of peers) {
        this.inc({ To: p.id, channel: 'stream' }, p.streamMessages);
        this.inc({ To: p.id, channel: 'pipeline' }, p.pipelineMessages);
      }
    },
  });

  // --- storage commits ---
  // There is no separate WAL yet: the LMDB commit is the one fsync that makes a write durable, so
  // both of etcd's disk histograms observe it (dashboards and alerts built on either keep working).
  const walFsync = new Histogram({
    name: 'etcd_disk_wal_fsync_duration_seconds', help: 'The latency distributions of fsync called by WAL.', buckets: DISK_BUCKETS, registers,
  });
  const backendCommit = new Histogram({
    name: 'etcd_disk_backend_commit_duration_seconds', help: 'The latency distributions of commit called by backend.', buckets: DISK_BUCKETS, registers,
  });

  // --- peers: etcd's prober histogram (buckets 0.0001 s doubling, as etcd's) ---
  const peerRtt = new Histogram({
    name: 'etcd_network_peer_round_trip_time_seconds', help: 'Round-Trip-Time histogram between peers',
    labelNames: ['To'], buckets: Array.from({ length: 16 }, (_, i) => 0.0001 * 2 ** i), registers,
  });

  const snapCounter = (name: string, help: string, label: 'To' | 'From') => new Counter({ name, help, labelNames: [label], registers });
  const snapSend = { ok: snapCounter('etcd_network_snapshot_send_success', 'Total number of successful snapshot sends', 'To'), failed: snapCounter('etcd_network_snapshot_send_failures', 'Total number of snapshot send failures', 'To') };
  const snapReceive = { ok: snapCounter('etcd_network_snapshot_receive_success', 'Total number of successful snapshot receives', 'From'), failed: snapCounter('etcd_network_snapshot_receive_failures', 'Total number of snapshot receive failures', 'From') };

  // --- gRPC: go-grpc-prometheus names and labels ---
  let grpcBytes: GrpcBytesSource | undefined;
  const bytesCounter = (name: string, help: string, read: (b: { received: number; sent: number }) => number): void => {
    new Counter({
      name, help, registers,
      collect() {
        if (grpcBytes === undefined) return;
        this.reset();
        this.inc(read(grpcBytes.grpcBytes()));
      },
    });
  };
  bytesCounter('etcd_network_client_grpc_received_bytes_total', 'The total number of bytes received from grpc clients.', (b) => b.received);
  bytesCounter('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.', (b) => b.sent);
  const labels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
  /** By path: the method's labels and its counts. */
  const methods = new Map<string, { labels: readonly [GrpcType, string, string]; counts: GrpcMethodMetrics }>();
  new Counter({
    name: 'grpc_server_started_total', help: 'Total number of RPCs started on the server.', labelNames: labels, registers,
    collect() {
      this.reset();
      for (const m of methods.values()) this.labels(...m.labels).inc(m.counts.started);
    },
  });
  new Counter({
    name: 'grpc_server_handled_total', help: 'Total number of RPCs completed on the server, regardless of success or failure.',
    labelNames: [...labels, 'grpc_code'], registers,
    collect() {
      this.reset();
      // Every code of every method seen, zeros included, as go-grpc-prometheus initializes them.
      for (const m of methods.values()) {
        GRPC_CODE_NAMES.forEach((code, i) => this.labels(...m.labels, code).inc(m.counts.handled[i] ?? 0));
      }
    },
  });

  const healthSuccess = new Counter({ name: 'etcd_server_health_success', help: 'The total number of successful health checks', registers });
  const healthFailures = new Counter({ name: 'etcd_server_health_failures', help: 'The total number of failed health checks', registers });

  // --- v2 (the gateway's own) ---
  const v2Requests = new Counter({ name: 'etcd_gateway_v2_requests_total', help: 'v2 keys API requests answered, by v2 action and HTTP status code.', labelNames: ['action', 'code'], registers });
  const v2LongPolls = new Gauge({ name: 'etcd_gateway_v2_long_polls', help: 'v2 watch requests (wait=true) currently waiting.', registers });
  const v2SharedWatches = new Gauge({ name: 'etcd_gateway_v2_shared_watches', help: 'Shared watches currently serving v2 waiters.', registers });
  const v2SharedSubscribers = new Gauge({ name: 'etcd_gateway_v2_shared_watch_subscribers', help: 'v2 waiters subscribed to the shared watches (fan-out = this / etcd_gateway_v2_shared_watches).', registers });
  const v2Children = new Map<string, { inc(): void }>();
  let mirrorStats: (() => ReadMirrorStats) | undefined;
  new Counter({
    name: 'etcd_gateway_v2_mirror_reads_total', help: 'Gateway mode: v2 reads answered from the in-memory copy of the v2 keyspace (source="copy") or sent to the cluster (source="cluster").',
    labelNames: ['source'], registers,
    collect() {
      this.reset();
      const s = mirrorStats?.();
      if (s === undefined) return;
      this.labels('copy').inc(s.served);
      this.labels('cluster').inc(s.upstream);
    },
  });
  new Counter({
    name: 'etcd_gateway_v2_mirror_loads_total', help: 'Gateway mode: loads of the v2 read mirror (the first, and one after each drop).', registers,
    collect() {
      this.reset();
      const s = mirrorStats?.();
      if (s !== undefined) this.inc(s.loads);
    },
  });
  new Gauge({
    name: 'etcd_gateway_v2_mirror_bytes', help: 'Gateway mode: what the v2 read mirror holds (keys, values and 512 per key; bounded by --v2-read-mirror-bytes).', registers,
    collect() {
      const s = mirrorStats?.();
      this.set(s === undefined ? 0 : s.bytes);
    },
  });
  new Gauge({
    name: 'etcd_gateway_v2_mirror_revision', help: 'Gateway mode: the revision of the v2 read mirror (0: no copy, v2 reads go to the cluster).', registers,
    collect() {
      const s = mirrorStats?.();
      this.set(s === undefined ? 0 : Number(s.revision));
    },
  });

  const v2: V2Metrics = {
    request(action, code) {
      const k = `${action} ${code}`;
      let c = v2Children.get(k);
      if (c === undefined) v2Children.set(k, (c = v2Requests.labels(action, String(code))));
      c.inc();
    },
    longPollOpened() {
      v2LongPolls.inc();
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        v2LongPolls.dec();
      };
    },
    readMirror(stats) {
      mirrorStats = stats;
    },
    sharedWatchOpened() {
      v2SharedWatches.inc();
      let subscribers = 0;
      let open = true;
      return {
        subscribed() { if (open) { subscribers++; v2SharedSubscribers.inc(); } },
        unsubscribed() { if (open && subscribers > 0) { subscribers--; v2SharedSubscribers.dec(); } },
        closed() {
          if (!open) return;
          open = false;
          v2SharedWatches.dec();
          v2SharedSubscribers.dec(subscribers);
          subscribers = 0;
        },
      };
    },
  };

  return {
    contentType: registry.contentType,
    observeCommitSeconds(seconds) {
      backendCommit.observe(seconds);
    },
    observeWalFsyncSeconds(seconds) {
      walFsync.observe(seconds);
    },
    observePeerRoundTrip(to, seconds) {
      peerRtt.observe({ To: to }, seconds);
    },
    peerSnapshot(direction, peer, ok) {
      if (direction === 'send') (ok ? snapSend.ok : snapSend.failed).inc({ To: peer });
      else (ok ? snapReceive.ok : snapReceive.failed).inc({ From: peer });
    },
    watchCore(source) {
      core = source;
    },
    watchUpstream(source) {
      upstream = source;
    },
    watchGrpcBytes(source) {
      grpcBytes = source;
    },
    grpcMethod(path, type) {
      const known = methods.get(path);
      if (known !== undefined) return known.counts;
      // "/etcdserverpb.KV/Put" -> service "etcdserverpb.KV", method "Put"
      const slash = path.lastIndexOf('/');
      const counts: GrpcMethodMetrics = { started: 0, handled: GRPC_CODE_NAMES.map(() => 0) };
      methods.set(path, { labels: [type, path.slice(1, slash), path.slice(slash + 1)], counts });
      return counts;
    },
    v2,
    healthChecked(ok) {
      (ok ? healthSuccess : healthFailures).inc();
    },
    async scrape() {
      snapshot = undefined;
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
  };
}
