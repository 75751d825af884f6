// The embedded backend: one member's MVCC store, lessor and watch hub behind the V3Backend
// contract. Writes are encoded as InternalRequests, applied in order by the Applier, and answered
// once the storage commit that holds them is durable (concurrent commits share one fsync).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { EtcdError } from '../backend/errors.js';
import type { CallContext, V3Backend, WatchOutput, WatchSession } from '../backend/index.js';
import { checkDelete, checkPut, checkRange, checkTxn } from '../backend/validate.js';
import type * as pb from '../gen/etcdserverpb/rpc.js';
import { AlarmRequest_AlarmAction as AlarmAction, AlarmType } from '../gen/etcdserverpb/rpc.js';
import { InternalRequest } from '../gen/serverpb/internal.js';
import type { HealthFacts } from '../backend/health.js';
import type { CoreStats } from '../metrics/index.js';
import { fromBin } from '../util/bytes.js';
import type { Clock } from '../util/clock.js';
import { Applier, type ApplyResponse, type ApplyResult } from './apply.js';
import { clusterId, memberId } from './cluster/ids.js';
import { rangeOp, txnOp } from './kv.js';
import { Lessor, MAX_LEASE_TTL } from './lease/lessor.js';
import { MvccStore } from './mvcc/store.js';
import { RequestIdGenerator } from './request-id.js';
import { internalRequestSize } from './request-size.js';
import { LmdbStorage } from './storage/lmdb.js';
import { WatchHub } from './watch/hub.js';
import { CoreWatchSession } from './watch/session.js';

export const SERVER_VERSION = '3.4.23';
export const CLUSTER_VERSION = '3.4.0';

export interface CoreConfig {
  readonly dataDir: string;
  readonly name: string;
  readonly advertisePeerUrls: readonly string[];
  readonly advertiseClientUrls: readonly string[];
  readonly initialClusterToken: string;
  readonly maxTxnOps: number;
  readonly maxRequestBytes: number;
  readonly electionTimeoutMs: number;
  readonly watchProgressNotifyIntervalMs: number;
  readonly watchBacklogBytesMax: number;
  readonly clock: Clock;
  /** Observes each storage commit's latency in seconds (the metrics' disk histograms). */
  readonly onCommitSeconds?: (seconds: number) => void;
}

type ResponseOf = { [R in ApplyResponse as R['$case']]: R['value'] };

const SNAPSHOT_CHUNK = 32 * 1024;
const LEASE_CHECK_MS = 500;
const LEASE_REVOKES_PER_CHECK = 500;
const META_TERM = 'term';

export class EmbeddedBackend implements V3Backend {
  private readonly storage: LmdbStorage;
  private readonly store: MvccStore;
  private readonly lessor: Lessor;
  private readonly applier: Applier;
  private readonly hub: WatchHub;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly term: bigint;
  private readonly requestIds: RequestIdGenerator;
  /** Resolves when everything applied so far is durable. */
  private lastCommit: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private readonly revoking = new Set<bigint>();
  private readonly stopTimers: (() => void)[] = [];
  private closed = false;
  /** Proposed and not yet durable; proposals that failed (for metrics). */
  private proposalsPending = 0;
  private proposalsFailed = 0;

  constructor(private readonly cfg: CoreConfig) {
    this.storage = new LmdbStorage(cfg.dataDir, cfg.onCommitSeconds);
    this.store = new MvccStore(this.storage);
    this.lessor = new Lessor(cfg.clock, Math.ceil((1.5 * cfg.electionTimeoutMs) / 1000));
    this.applier = new Applier(this.store, this.lessor, this.storage);
    for (const { id, value } of this.storage.scanLeases()) this.lessor.grant(id, value.readDoubleBE(0));
    for (const kv of this.store.liveKeys({ key: '', end: null })) {
      if (kv.lease !== 0n) this.lessor.attach(kv.lease, kv.key.toString('latin1'));
    }
    this.hub = new WatchHub(this.store, this.storage);
    this.memberId = memberId(cfg.advertisePeerUrls, cfg.initialClusterToken);
    this.clusterId = clusterId([this.memberId]);
    this.requestIds = new RequestIdGenerator(this.memberId, cfg.clock.nowMs());
    // A restarted member starts a new term, as etcd's single member does with its election.
    const t = this.storage.getMeta(META_TERM);
    this.term = (t === undefined ? 1n : t.readBigUInt64BE(0)) + 1n;
    const tb = Buffer.alloc(8);
    tb.writeBigUInt64BE(this.term);
    this.storage.stage({ t: 'meta', name: META_TERM, value: tb });
    this.lastCommit = this.storage.commit();
    this.startTimers();
  }

  private startTimers(): void {
    const { clock } = this.cfg;
    const leaseLoop = (): void => {
      this.expireLeases();
      this.stopTimers[0] = clock.after(LEASE_CHECK_MS, leaseLoop);
    };
    this.stopTimers[0] = clock.after(LEASE_CHECK_MS, leaseLoop);
    const progressLoop = (): void => {
      this.hub.progressTick();
      this.stopTimers[1] = clock.after(this.cfg.watchProgressNotifyIntervalMs, progressLoop);
    };
    this.stopTimers[1] = clock.after(this.cfg.watchProgressNotifyIntervalMs, progressLoop);
  }

  header(rev: number): pb.ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: BigInt(rev), raftTerm: this.term };
  }

  private withHeader<T extends { header: pb.ResponseHeader | undefined }>(resp: T): T {
    resp.header = this.header(Number(resp.header?.revision ?? 0n));
    return resp;
  }

  // --- the write path ---

  /** Encodes, applies and makes durable one mutating request; resolves with its result. */
  private async propose(request: InternalRequest['request']): Promise<ApplyResult> {
    if (this.closed) throw new EtcdError('stopped');
    if (this.failure !== undefined) throw new EtcdError('failed', `etcdserver: storage failed: ${this.failure.message}`);
    const req: InternalRequest = { header: { ID: this.requestIds.next() }, request };
    if (internalRequestSize(req) > this.cfg.maxRequestBytes) throw new EtcdError('requestTooLarge');
    const result = this.applier.apply(req, this.applier.appliedIndex + 1);
    const durable = this.storage.commit();
    this.lastCommit = durable;
    this.proposalsPending++;
    durable.then(
      () => {
        this.proposalsPending--;
        if (result.changes.length > 0) this.hub.notify(result.rev, result.changes);
      },
      (err: unknown) => {
        this.proposalsPending--;
        this.proposalsFailed++;
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      },
    );
    await durable;
    if (result.error !== undefined) throw result.error;
    return result;
  }

  private expectResponse<C extends ApplyResponse['$case']>(r: ApplyResult, c: C): ResponseOf[C] {
    const resp = r.response;
    if (resp?.$case !== c) throw new Error(`apply returned ${resp?.$case} for ${c}`);
    return resp.value as ResponseOf[C];
  }

  // --- KV ---

  /**
   * Auth is not implemented yet (issue 7), so auth is off and, as in etcd with auth off, any
   * token a request carries is invalid.
   */
  private authenticate(ctx: CallContext | undefined): void {
    if (ctx?.token !== undefined) throw new EtcdError('invalidAuthToken');
  }

  async range(req: pb.RangeRequest, ctx?: CallContext): Promise<pb.RangeResponse> {
    checkRange(req);
    this.authenticate(ctx);
    return this.withHeader(rangeOp(this.store, req, this.store.currentRev));
  }

  async put(req: pb.PutRequest, ctx?: CallContext): Promise<pb.PutResponse> {
    checkPut(req);
    this.authenticate(ctx);
    this.checkNoSpace();
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'put', value: req }), 'put'));
  }

  async deleteRange(req: pb.DeleteRangeRequest, ctx?: CallContext): Promise<pb.DeleteRangeResponse> {
    checkDelete(req);
    this.authenticate(ctx);
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'deleteRange', value: req }), 'deleteRange'));
  }

  async txn(req: pb.TxnRequest, ctx?: CallContext): Promise<pb.TxnResponse> {
    checkTxn(req, this.cfg.maxTxnOps);
    this.authenticate(ctx);
    if (isReadOnlyTxn(req)) {
      // Read-only txns need no write: run them against the current state.
      const txn = this.store.beginWrite();
      return this.withHeader(txnOp(this.store, this.lessor, txn, req));
    }
    if (hasPut(req)) this.checkNoSpace();
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'txn', value: req }), 'txn'));
  }

  async compact(req: pb.CompactionRequest, ctx?: CallContext): Promise<pb.CompactionResponse> {
    this.authenticate(ctx);
    const rev = Number(req.revision);
    if (rev <= this.store.compactRev) throw new EtcdError('compacted');
    if (rev > this.store.currentRev) throw new EtcdError('futureRev');
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'compaction', value: req }), 'compaction'));
  }

  private checkNoSpace(): void {
    if (this.applier.alarms.some((a) => a.alarm === AlarmType.NOSPACE)) throw new EtcdError('noSpace');
  }

  // --- Watch ---

  watch(out: WatchOutput, ctx?: CallContext): WatchSession {
    return new CoreWatchSession(this.hub, (rev) => this.header(rev), out, ctx?.token !== undefined, {
      fragmentBytes: this.cfg.maxRequestBytes + 512 * 1024,
      backlogBytesMax: this.cfg.watchBacklogBytesMax,
    });
  }

  // --- Lease ---

  async leaseGrant(req: pb.LeaseGrantRequest, ctx?: CallContext): Promise<pb.LeaseGrantResponse> {
    this.authenticate(ctx);
    if (req.TTL > BigInt(MAX_LEASE_TTL)) throw new EtcdError('leaseTTLTooLarge');
    this.checkNoSpace();
    let id = req.ID;
    while (id === 0n || (req.ID === 0n && this.lessor.has(id))) {
      id = randomBytes(8).readBigInt64BE(0) & 0x7fff_ffff_ffff_ffffn;
    }
    const r = await this.propose({ $case: 'leaseGrant', value: { ID: id, TTL: req.TTL } });
    return this.withHeader(this.expectResponse(r, 'leaseGrant'));
  }

  async leaseRevoke(req: pb.LeaseRevokeRequest, ctx?: CallContext): Promise<pb.LeaseRevokeResponse> {
    this.authenticate(ctx);
    if (!this.lessor.has(req.ID)) throw new EtcdError('leaseNotFound');
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'leaseRevoke', value: req }), 'leaseRevoke'));
  }

  async leaseKeepAlive(req: pb.LeaseKeepAliveRequest): Promise<pb.LeaseKeepAliveResponse> {
    const header = this.header(this.store.currentRev);
    return { header, ID: req.ID, TTL: BigInt(this.lessor.renew(req.ID)) };
  }

  async leaseTimeToLive(req: pb.LeaseTimeToLiveRequest): Promise<pb.LeaseTimeToLiveResponse> {
    const header = this.header(this.store.currentRev);
    const lease = this.lessor.get(req.ID);
    if (lease === undefined) return { header, ID: req.ID, TTL: -1n, grantedTTL: 0n, keys: [] };
    return {
      header,
      ID: req.ID,
      TTL: BigInt(this.lessor.remaining(req.ID)),
      grantedTTL: BigInt(lease.ttl),
      keys: req.keys ? [...lease.keys].sort().map(fromBin) : [],
    };
  }

  async leaseLeases(_req: pb.LeaseLeasesRequest): Promise<pb.LeaseLeasesResponse> {
    return { header: this.header(this.store.currentRev), leases: this.lessor.ids().map((ID) => ({ ID })) };
  }

  /** Proposes a revoke for every expired lease (the member is always the leader today). */
  private expireLeases(): void {
    if (this.closed || this.failure !== undefined) return;
    for (const id of this.lessor.expired(LEASE_REVOKES_PER_CHECK)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.propose({ $case: 'leaseRevoke', value: { ID: id } })
        .catch(() => undefined)
        .finally(() => this.revoking.delete(id));
    }
  }

  // --- Cluster ---

  private members(): pb.Member[] {
    return [{
      ID: this.memberId,
      name: this.cfg.name,
      peerURLs: [...this.cfg.advertisePeerUrls],
      clientURLs: [...this.cfg.advertiseClientUrls],
      isLearner: false,
    }];
  }

  async memberList(_req: pb.MemberListRequest): Promise<pb.MemberListResponse> {
    return { header: { ...this.header(0) }, members: this.members() };
  }

  // --- Maintenance ---

  async status(_req: pb.StatusRequest): Promise<pb.StatusResponse> {
    await this.lastCommit.catch(() => undefined);
    const { dbSize, inUse } = this.storage.sizes();
    const index = BigInt(this.applier.appliedIndex);
    const errors = this.applier.alarms.map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm] ?? a.alarm} `);
    return {
      header: this.header(this.store.currentRev),
      version: SERVER_VERSION,
      dbSize: BigInt(dbSize),
      leader: this.hasLeader() ? this.memberId : 0n,
      raftIndex: index,
      raftTerm: this.term,
      raftAppliedIndex: index,
      errors,
      dbSizeInUse: BigInt(inUse),
      isLearner: false,
    };
  }

  async alarm(req: pb.AlarmRequest): Promise<pb.AlarmResponse> {
    if (req.action === AlarmAction.GET) {
      const alarms = this.applier.alarms.filter((a) => req.alarm === AlarmType.NONE || a.alarm === req.alarm);
      return { header: undefined, alarms: alarms.map((a) => ({ ...a })) };
    }
    return this.expectResponse(await this.propose({ $case: 'alarm', value: req }), 'alarm');
  }

  async defragment(_req: pb.DefragmentRequest): Promise<pb.DefragmentResponse> {
    await this.lastCommit;
    return { header: undefined };
  }

  async hash(_req: pb.HashRequest): Promise<pb.HashResponse> {
    await this.lastCommit;
    let h = 0;
    for (const r of this.storage.scanRecords(0, Number.MAX_SAFE_INTEGER)) h = crc32(r.value, h);
    for (const l of this.storage.scanLeases()) h = crc32(l.value, h);
    return { header: this.header(this.store.currentRev), hash: h >>> 0 };
  }

  async hashKV(req: pb.HashKVRequest): Promise<pb.HashKVResponse> {
    let rev = Number(req.revision);
    if (rev > 0 && rev <= this.store.compactRev) throw new EtcdError('compacted');
    if (rev > this.store.currentRev) throw new EtcdError('futureRev');
    if (rev <= 0) rev = this.store.currentRev;
    await this.lastCommit;
    let h = 0;
    const k = Buffer.allocUnsafe(16);
    for (const r of this.storage.scanRecords(0, rev + 1)) {
      k.writeDoubleBE(r.main, 0);
      k.writeDoubleBE(r.sub, 8);
      h = crc32(r.value, crc32(k, h));
    }
    return { header: this.header(this.store.currentRev), hash: h >>> 0, compactRevision: BigInt(this.store.compactRev) };
  }

  async *snapshot(_req: pb.SnapshotRequest): AsyncIterable<pb.SnapshotResponse> {
    await this.lastCommit;
    const dir = await mkdtemp(join(tmpdir(), 'etcd-gateway-snap-'));
    try {
      const file = join(dir, 'db');
      await this.storage.backup(file);
      const total = (await stat(file)).size;
      const sha = createHash('sha256');
      let sent = 0;
      for await (const chunk of createReadStream(file, { highWaterMark: SNAPSHOT_CHUNK }) as AsyncIterable<Buffer>) {
        sha.update(chunk);
        sent += chunk.length;
        yield { header: undefined, remainingBytes: BigInt(total - sent), blob: chunk };
      }
      yield { header: undefined, remainingBytes: 0n, blob: sha.digest() };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async moveLeader(req: pb.MoveLeaderRequest): Promise<pb.MoveLeaderResponse> {
    if (req.targetID !== this.memberId) throw new EtcdError('badLeaderTransferee');
    return { header: undefined };
  }

  /** Watchers open on this member (every gRPC, gateway and v2 watch counts; etcd's watcher_total). */
  watcherCount(): number {
    return this.hub.size;
  }

  /** A single member is always its own leader; the Raft issue makes this the Raft state's. */
  hasLeader(): boolean {
    return !this.closed;
  }

  healthFacts(): HealthFacts {
    return {
      hasLeader: this.hasLeader(),
      isLearner: false,
      alarms: this.applier.alarms.map((a) => a.alarm),
      storageFailure: this.failure?.message,
    };
  }

  /** The numbers behind /metrics, read once per scrape. */
  metricsStats(): CoreStats {
    const { dbSize, inUse } = this.storage.sizes();
    const c = this.store.counts;
    const leader = this.hasLeader();
    return {
      hasLeader: leader,
      isLeader: leader,
      // The member became leader once, at start (as a single etcd member reports 1).
      leaderChanges: 1,
      proposalsCommitted: this.applier.appliedIndex,
      proposalsApplied: this.applier.appliedIndex,
      proposalsPending: this.proposalsPending,
      proposalsFailed: this.proposalsFailed,
      dbSizeBytes: dbSize,
      dbSizeInUseBytes: inUse,
      quotaBackendBytes: this.storage.mapSizeBytes,
      keys: c.liveKeys,
      watchers: this.watcherCount(),
      watchStreams: this.hub.streams,
      currentRevision: this.store.currentRev,
      compactRevision: this.store.compactRev,
      puts: c.puts,
      deletes: c.deletes,
      ranges: c.ranges,
      txns: c.txns,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of this.stopTimers) stop();
    await this.lastCommit.catch(() => undefined);
    await this.storage.close();
  }
}

function isReadOnlyTxn(t: pb.TxnRequest): boolean {
  return [...t.success, ...t.failure].every((op) => {
    const r = op.request;
    return r?.$case === 'requestRange' || (r?.$case === 'requestTxn' && isReadOnlyTxn(r.value));
  });
}

function hasPut(t: pb.TxnRequest): boolean {
  return [...t.success, ...t.failure].some((op) => {
    const r = op.request;
    return r?.$case === 'requestPut' || (r?.$case === 'requestTxn' && hasPut(r.value));
  });
}

