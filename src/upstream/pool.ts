// The upstream endpoints: one grpc-js channel per etcd member, a health view of each (probed in the
// background: reachable and has a leader), and the choice of the endpoint a call goes to. Calls
// stick to one healthy endpoint (like clientv3's pinned endpoint) and move on when it fails.
import * as grpc from '@grpc/grpc-js';
import {
  AuthClient, ClusterClient, KVClient, LeaseClient, MaintenanceClient, MaintenanceService, StatusRequest, WatchClient,
} from '../gen/etcdserverpb/rpc.js';
import { UnaryChannel } from './unary.js';
import { ReadBatcher } from './batch.js';

export interface UpstreamTls {
  readonly ca?: Buffer | undefined;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
}

export class Endpoint {
  /** Unary calls (the hot path: every KV request) go over this; streams over the grpc-js channel. */
  readonly unary: UnaryChannel;
  /** Ranges and read-only txns to this endpoint, coalesced under load (batch.ts). */
  readonly reads: ReadBatcher;
  readonly channel: grpc.Channel;
  readonly kv: KVClient;
  readonly watch: WatchClient;
  readonly lease: LeaseClient;
  readonly cluster: ClusterClient;
  readonly maintenance: MaintenanceClient;
  readonly auth: AuthClient;
  healthy = true;
  lastError = '';

  constructor(readonly address: string, tls: UpstreamTls | undefined, creds: grpc.ChannelCredentials, maxMessageBytes: number) {
    this.unary = new UnaryChannel(address, tls, maxMessageBytes);
    this.reads = new ReadBatcher(this.unary);
    const options: grpc.ChannelOptions = {
      // A restarted member must be found again within a second or so, not after grpc's 2-minute backoff.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.min_reconnect_backoff_ms': 100,
      // A member that vanished without closing the connection (power loss, partition) is noticed
      // while watch or lease streams are open. Not on an idle connection: etcd's server refuses
      // pings without streams (PermitWithoutStream false) and answers a third with GOAWAY
      // too_many_pings; an idle connection has no call to lose, and the next call finds a dead
      // member by its deadline.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 0,
      'grpc.max_receive_message_length': 2 ** 31 - 1,
      'grpc.max_send_message_length': maxMessageBytes,
    };
    this.channel = new grpc.Channel(address, creds, options);
    const opts = { channelOverride: this.channel };
    this.kv = new KVClient(address, creds, opts);
    this.watch = new WatchClient(address, creds, opts);
    this.lease = new LeaseClient(address, creds, opts);
    this.cluster = new ClusterClient(address, creds, opts);
    this.maintenance = new MaintenanceClient(address, creds, opts);
    this.auth = new AuthClient(address, creds, opts);
  }

  close(): void {
    this.unary.close();
    this.channel.close();
  }
}

export function credentialsOf(tls: UpstreamTls | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

/** etcd's require-leader metadata: a member without a leader refuses the call instead of hanging. */
export function requireLeader(md: grpc.Metadata): grpc.Metadata {
  md.set('hasleader', 'true');
  return md;
}

export class EndpointPool {
  readonly endpoints: readonly Endpoint[];
  private current = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(addresses: readonly string[], tls: UpstreamTls | undefined, maxMessageBytes: number, private readonly probeIntervalMs: number) {
    const creds = credentialsOf(tls);
    this.endpoints = addresses.map((a) => new Endpoint(a, tls, creds, maxMessageBytes));
  }

  /** The endpoint to use now: the pinned one while healthy, else the next healthy one, else the next. */
  pick(tried?: ReadonlySet<Endpoint>): Endpoint {
    const pinned = this.endpoints[this.current]!;
    if (pinned.healthy && tried?.has(pinned) !== true) return pinned;
    const n = this.endpoints.length;
    for (const wantHealthy of [true, false]) {
      for (let i = 0; i < n; i++) {
        const ep = this.endpoints[(this.current + i) % n]!;
        if (tried?.has(ep) === true || (wantHealthy && !ep.healthy)) continue;
        this.current = (this.current + i) % n;
        return ep;
      }
    }
    return this.endpoints[this.current]!;
  }

  markDown(ep: Endpoint, reason: string): void {
    ep.healthy = false;
    ep.lastError = reason;
    if (this.endpoints[this.current] === ep) this.current = (this.current + 1) % this.endpoints.length;
  }

  markUp(ep: Endpoint): void {
    ep.healthy = true;
  }

  anyHealthy(): boolean {
    return this.endpoints.some((e) => e.healthy);
  }

  describe(): string {
    return this.endpoints.map((e) => `${e.address}: ${e.healthy ? 'healthy' : `unhealthy (${e.lastError})`}`).join('; ');
  }

  /**
   * Probes every endpoint now and then on a timer: Status with a deadline; healthy = answers and
   * knows a leader. It goes over the unary connection, the one requests use.
   */
  startProbing(): void {
    const loop = (): void => {
      void this.probeAll().finally(() => {
        if (!this.closed) this.probeTimer = setTimeout(loop, this.probeIntervalMs).unref();
      });
    };
    loop();
  }

  probeAll(): Promise<void> {
    return Promise.all(this.endpoints.map((ep) => new Promise<void>((resolve) => {
      const deadline = Date.now() + Math.max(500, this.probeIntervalMs);
      ep.unary.call(MaintenanceService.status, StatusRequest.fromPartial({}), undefined, deadline, (err, resp) => {
        if (err !== null) this.markDown(ep, err.details);
        else if (resp!.leader === 0n) this.markDown(ep, 'no leader');
        else this.markUp(ep);
        resolve();
      });
    }))).then(() => undefined);
  }

  close(): void {
    this.closed = true;
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    for (const ep of this.endpoints) ep.close();
  }
}
