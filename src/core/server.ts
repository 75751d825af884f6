// The embedded backend: one member's MVCC store, lessor and watch hub behind the V3Backend
// contract. Writes are encoded as InternalRequests, applied in order by the Applier, and answered
// once the storage commit that holds them is durable (concurrent commits share one fsync).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { EtcdError, type ErrorCode } from '../backend/errors.js';
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
import {
  AuthStore, checkDeleteAuth, checkLeaseRevokeAuth, checkPassword, checkPutAuth, checkTxnAuth, hashPassword,
  JwtTokens, SimpleTokens, simpleTokenPrefix, type AuthInfo, type JwtOptions, type LeaseKeys, type TokenProvider,
} from './auth/index.js';
import { clusterId, memberId } from './cluster/ids.js';
import { rangeOp, txnOp } from './kv.js';
import { Lessor, MAX_LEASE_TTL } from './lease/lessor.js';
import { fitsQuota, leaseGrantCost, putCost, quotaBytes, txnCost } from './quota.js';
import { startCompactor, type AutoCompaction } from './compactor.js';
import { MvccStore } from './mvcc/store.js';
import { RaftNode } from './node.js';
import type { Entry } from './raft/index.js';
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
  /** --auth-token: simple tokens, or JWTs signed and checked with these keys. */
  readonly authToken: { readonly kind: 'simple' } | { readonly kind: 'jwt'; readonly options: JwtOptions };
  /** --auth-token-ttl: how long a simple token lives without use. */
  readonly authTokenTtlMs: number;
  readonly clock: Clock;
  readonly onWalSyncSeconds?: (seconds: number) => void;
  /** Applied entries between snapshots (WAL segments before a snapshot are deleted). */
  readonly snapshotCount?: number;
  /** Observes each storage commit's latency in seconds (the metrics' disk histograms). */
  readonly onCommitSeconds?: (seconds: number) => void;
  /** --quota-backend-bytes as given: 0 = etcd's default (2 GiB), negative = no quota. */
  readonly quotaBackendBytes?: number;
  /** --max-watchers-per-stream: 0 = no limit. */
  readonly maxWatchersPerStream?: number;
  /** --auto-compaction-*: undefined = off. */
  readonly autoCompaction?: AutoCompaction | undefined;
}

/** etcd's maintenance service leaves auth errors unwrapped: clients see UNKNOWN and these texts. */
const AUTH_PACKAGE_TEXT: Partial<Record<ErrorCode, string>> = {
  userEmpty: 'auth: user name is empty',
  userNotFound: 'auth: user not found',
  permissionDenied: 'auth: permission denied',
  invalidAuthToken: 'auth: invalid auth token',
};

type AuthChange = NonNullable<InternalRequest['request']>;

type ResponseOf = { [R in ApplyResponse as R['$case']]: R['value'] };

const SNAPSHOT_CHUNK = 32 * 1024;
/** Least time between two measures of the backend's live bytes after commits (the quota's input). */
const SPACE_MEASURE_MS = 100;
const LEASE_CHECK_MS = 500;
const LEASE_REVOKES_PER_CHECK = 500;
/** Raft tick: the heartbeat interval (etcd's --heartbeat-interval default). */
const TICK_MS = 100;
/** --snapshot-count default: etcd 3.6's (3.4 had 100,000; fewer entries held in memory between snapshots). */
const DEFAULT_SNAPSHOT_COUNT = 10_000;
/** Set by `snapshot restore` (src/cli/snapshot.ts): overrides --initial-cluster-token. */
export const META_CLUSTER_TOKEN = 'clusterToken';

export class EmbeddedBackend implements V3Backend {
  private readonly storage: LmdbStorage;
  private readonly store: MvccStore;
  private readonly lessor: Lessor;
  private readonly applier: Applier;
  private readonly hub: WatchHub;
  private readonly auth: AuthStore;
  private readonly tokens: TokenProvider;
  /** Checked against for unknown users, so a failed login takes as long whatever failed. */
  private dummyHash: Promise<Buffer> | undefined;
  private readonly leaseKeys: LeaseKeys = (id) => this.lessor.get(id)?.keys ?? [];
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** The raft node in front of apply: every write is proposed, logged (WAL), committed, applied. */
  private readonly node: RaftNode;
  /** Proposals of this member waiting for their entry to be applied, by request ID. */
  private readonly pending = new Map<bigint, Pending>();
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
  /**
   * The backend quota in bytes (Infinity: none) and what it is checked against: the live bytes
   * last measured (a measure costs tens of µs: taken at most every SPACE_MEASURE_MS after commits,
   * and again whenever the estimate reaches the quota) plus the cost of writes admitted since.
   */
  private readonly quota: number;
  private usedBytes = 0;
  private admittedBytes = 0;
  private measuredAtMs = 0;

  constructor(private readonly cfg: CoreConfig) {
    this.storage = new LmdbStorage(cfg.dataDir, cfg.onCommitSeconds);
    this.store = new MvccStore(this.storage);
    this.lessor = new Lessor(cfg.clock, Math.ceil((1.5 * cfg.electionTimeoutMs) / 1000));
    this.auth = new AuthStore(this.storage);
    this.tokens = cfg.authToken.kind === 'jwt' ? new JwtTokens(cfg.clock, cfg.authToken.options) : new SimpleTokens(cfg.clock, cfg.authTokenTtlMs);
    this.applier = new Applier(this.store, this.lessor, this.storage, this.auth, this.tokens);
    for (const { id, value } of this.storage.scanLeases()) this.lessor.grant(id, value.readDoubleBE(0));
    for (const kv of this.store.liveKeys({ key: '', end: null })) {
      if (kv.lease !== 0n) this.lessor.attach(kv.lease, kv.key.toString('latin1'));
    }
    this.hub = new WatchHub(this.store, this.storage);
    this.quota = quotaBytes(cfg.quotaBackendBytes ?? 0);
    if (Number.isFinite(this.quota)) this.measureSpace();
    // A data dir made by `snapshot restore` carries the cluster token it was restored with (a new
    // cluster: new member and cluster IDs, as etcd's restore --initial-cluster-token gives).
    const token = this.storage.getMeta(META_CLUSTER_TOKEN)?.toString() ?? cfg.initialClusterToken;
    this.memberId = memberId(cfg.advertisePeerUrls, token);
    this.clusterId = clusterId([this.memberId]);
    this.requestIds = new RequestIdGenerator(this.memberId, cfg.clock.nowMs());
    // Each (re)start elects this member in a new term, as etcd's single member does.
    this.node = new RaftNode({
      id: this.memberId,
      initialVoters: [this.memberId],
      walDir: join(cfg.dataDir, 'member', 'wal'),
      clock: cfg.clock,
      tickMs: TICK_MS,
      electionTicks: Math.max(2, Math.round(cfg.electionTimeoutMs / TICK_MS)),
      heartbeatTicks: 1,
      snapshotCount: cfg.snapshotCount ?? DEFAULT_SNAPSHOT_COUNT,
      apply: (entries) => this.applyEntries(entries),
      flushState: () => this.storage.flushed(),
      appliedIndex: this.applier.appliedIndex,
      onError: (err) => { this.failure ??= err; },
      ...(cfg.onWalSyncSeconds ? { onWalSyncSeconds: cfg.onWalSyncSeconds } : {}),
    });
    this.node.start();
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
    if (this.cfg.autoCompaction !== undefined) {
      this.stopTimers.push(startCompactor(this.cfg.autoCompaction, {
        clock,
        currentRev: () => this.store.currentRev,
        compact: async (rev) => { await this.compact({ revision: BigInt(rev), physical: false }); },
        isLeader: () => this.node.isLeader,
      }));
    }
  }

  header(rev: number): pb.ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: BigInt(rev), raftTerm: this.term };
  }

  /** The raft term this member is in. */
  get term(): bigint {
    return BigInt(this.node.term);
  }

  private withHeader<T extends { header: pb.ResponseHeader | undefined }>(resp: T): T {
    resp.header = this.header(Number(resp.header?.revision ?? 0n));
    return resp;
  }

  // --- the write path ---

  /**
   * Proposes one mutating request through raft; resolves with its result once its entry is durable
   * in the WAL, committed, applied and visible in storage.
   */
  private async propose(request: InternalRequest['request'], info: AuthInfo | null): Promise<ApplyResult> {
    if (this.closed) throw new EtcdError('stopped');
    if (this.failure !== undefined) throw new EtcdError('failed', `etcdserver: storage failed: ${this.failure.message}`);
    const header = { ID: this.requestIds.next(), username: info?.username ?? '', authRevision: BigInt(info?.revision ?? 0) };
    const req: InternalRequest = { header, request };
    if (internalRequestSize(req) > this.cfg.maxRequestBytes) throw new EtcdError('requestTooLarge');
    // The entry's data: the request ID (so the proposer finds its waiter without decoding), then the request.
    const body = InternalRequest.encode(req).finish();
    const data = Buffer.allocUnsafe(8 + body.length);
    data.writeBigUInt64BE(header.ID, 0);
    data.set(body, 8);
    if (!this.node.isLeader) await this.node.whenLeader();
    this.proposalsPending++;
    let result: ApplyResult;
    try {
      result = await new Promise<ApplyResult>((resolve, reject) => {
        this.pending.set(header.ID, { req, resolve, reject });
        if (!this.node.propose(data)) {
          this.pending.delete(header.ID);
          reject(new EtcdError('noLeader'));
        }
      });
    } catch (e) {
      this.proposalsFailed++;
      throw e;
    } finally {
      this.proposalsPending--;
    }
    if (result.error !== undefined) throw result.error;
    return result;
  }

  /**
   * The raft node's apply: committed entries in log order, applied now through the one
   * deterministic Applier (skipping what storage already holds: a restart replays the WAL from the
   * last snapshot). The returned promise is the batch's storage commit (no fsync: the WAL holds
   * the entries durably); after it, watchers hear and then proposers are answered, so an answered
   * write is one that watchers (whose catch-up reads storage) can already see. The node does not
   * wait for it before applying the next batch.
   */
  private applyEntries(entries: readonly Entry[]): Promise<void> {
    const results: [Pending | undefined, ApplyResult][] = [];
    for (const e of entries) {
      if (e.type !== 'normal' || e.data.length < 8 || e.index <= this.applier.appliedIndex) continue;
      const buf = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.length);
      const id = buf.readBigUInt64BE(0);
      const p = this.pending.get(id);
      if (p !== undefined) this.pending.delete(id);
      results.push([p, this.applier.apply(p?.req ?? InternalRequest.decode(buf.subarray(8)), e.index)]);
    }
    if (results.length === 0) return Promise.resolve();
    const durable = this.storage.commit();
    this.lastCommit = durable;
    return durable.then(
      () => {
        if (Number.isFinite(this.quota) && this.cfg.clock.nowMs() - this.measuredAtMs >= SPACE_MEASURE_MS) this.measureSpace();
        for (const [p, r] of results) {
          if (r.changes.length > 0) this.hub.notify(r.rev, r.changes);
          p?.resolve(r);
        }
      },
      (err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
        for (const [p] of results) p?.reject(new EtcdError('failed', `etcdserver: storage failed: ${this.failure.message}`));
        throw this.failure;
      },
    );
  }

  private expectResponse<C extends ApplyResponse['$case']>(r: ApplyResult, c: C): ResponseOf[C] {
    const resp = r.response;
    if (resp?.$case !== c) throw new Error(`apply returned ${resp?.$case} for ${c}`);
    return resp.value as ResponseOf[C];
  }

  // --- KV ---

  /**
   * Who a call runs as: null without a token (or, with a verified client certificate and auth on,
   * its Common Name at the current auth revision, as etcd 3.4). A token that names nobody
   * (unknown, expired, or any token while auth is off, as etcd answers after AuthDisable) is refused.
   */
  private authInfo(ctx: CallContext | undefined): AuthInfo | null {
    const token = ctx?.token;
    if (token === undefined) {
      const cn = ctx?.commonName;
      return cn !== undefined && cn !== '' && this.auth.enabled ? { username: cn, revision: this.auth.revision } : null;
    }
    const info = this.auth.enabled ? this.tokens.info(token, this.auth.revision) : undefined;
    if (info === undefined) throw new EtcdError('invalidAuthToken');
    return info;
  }

  // Permission checks run just before propose, with no await in between: the apply sees the same
  // auth state (and refuses a request checked at an older auth revision, should one ever be
  // ordered after an auth change).

  async range(req: pb.RangeRequest, ctx?: CallContext): Promise<pb.RangeResponse> {
    checkRange(req);
    this.auth.checkKeys(this.authInfo(ctx), 'read', req.key, req.rangeEnd);
    return this.withHeader(rangeOp(this.store, req, this.store.currentRev));
  }

  async put(req: pb.PutRequest, ctx?: CallContext): Promise<pb.PutResponse> {
    checkPut(req);
    const info = this.authInfo(ctx);
    checkPutAuth(this.auth, info, req, this.leaseKeys);
    if (!this.hasSpace(putCost(req))) await this.refuseNoSpace();
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'put', value: req }, info), 'put'));
  }

  async deleteRange(req: pb.DeleteRangeRequest, ctx?: CallContext): Promise<pb.DeleteRangeResponse> {
    checkDelete(req);
    const info = this.authInfo(ctx);
    checkDeleteAuth(this.auth, info, req);
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'deleteRange', value: req }, info), 'deleteRange'));
  }

  async txn(req: pb.TxnRequest, ctx?: CallContext): Promise<pb.TxnResponse> {
    checkTxn(req, this.cfg.maxTxnOps);
    const info = this.authInfo(ctx);
    checkTxnAuth(this.auth, info, req, this.leaseKeys);
    if (isReadOnlyTxn(req)) {
      // Read-only txns need no write: run them against the current state.
      const txn = this.store.beginWrite();
      return this.withHeader(txnOp(this.store, this.lessor, txn, req));
    }
    if (hasPut(req) && !this.hasSpace(txnCost(req))) await this.refuseNoSpace();
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'txn', value: req }, info), 'txn'));
  }

  /** etcd 3.4 checks no permission for Compact, only that a token it carries is valid. */
  async compact(req: pb.CompactionRequest, ctx?: CallContext): Promise<pb.CompactionResponse> {
    const info = this.authInfo(ctx);
    const rev = Number(req.revision);
    if (rev <= this.store.compactRev) throw new EtcdError('compacted');
    if (rev > this.store.currentRev) throw new EtcdError('futureRev');
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'compaction', value: req }, info), 'compaction'));
  }

  authEnabledNow(): boolean {
    return this.auth.enabled;
  }

  /**
   * etcd's capped applier and quota check, synchronous so that the permission checks before it
   * run with nothing in between them and the proposal: while the NOSPACE alarm is on, a write that
   * adds data is refused; otherwise false when this one would take the backend to the quota.
   */
  private hasSpace(cost: number): boolean {
    if (this.applier.alarms.some((a) => a.alarm === AlarmType.NOSPACE)) throw new EtcdError('noSpace');
    if (!Number.isFinite(this.quota)) return true;
    if (!fitsQuota(this.usedBytes + this.admittedBytes, cost, this.quota)) {
      // The estimate only grows between measures (deletes and compactions free pages): measure.
      this.measureSpace();
      if (!fitsQuota(this.usedBytes, cost, this.quota)) return false;
    }
    this.admittedBytes += cost;
    return true;
  }

  private measureSpace(): void {
    this.usedBytes = this.storage.usedBytes();
    this.admittedBytes = 0;
    this.measuredAtMs = this.cfg.clock.nowMs();
  }

  /** Over the quota: raise the NOSPACE alarm through raft (as etcd's quota check does), then refuse. */
  private async refuseNoSpace(): Promise<never> {
    const raise = { action: AlarmAction.ACTIVATE, memberID: this.memberId, alarm: AlarmType.NOSPACE };
    await this.propose({ $case: 'alarm', value: raise }, null).catch(() => undefined);
    throw new EtcdError('noSpace');
  }

  // --- Watch ---

  watch(out: WatchOutput, ctx?: CallContext): WatchSession {
    // Checked at each create (read permission on the watched range), with the stream's token.
    const authorize = (key: Uint8Array, rangeEnd: Uint8Array): ErrorCode | undefined => {
      try {
        this.auth.checkKeys(this.authInfo(ctx), 'read', key, rangeEnd);
        return undefined;
      } catch (e) {
        if (e instanceof EtcdError) return e.code;
        throw e;
      }
    };
    return new CoreWatchSession(this.hub, (rev) => this.header(rev), out, authorize, {
      fragmentBytes: this.cfg.maxRequestBytes + 512 * 1024,
      backlogBytesMax: this.cfg.watchBacklogBytesMax,
      maxWatchers: (this.cfg.maxWatchersPerStream ?? 0) > 0 ? this.cfg.maxWatchersPerStream! : Infinity,
    });
  }

  // --- Lease ---

  /** etcd 3.4 checks no permission for LeaseGrant, only that a token it carries is valid. */
  async leaseGrant(req: pb.LeaseGrantRequest, ctx?: CallContext): Promise<pb.LeaseGrantResponse> {
    const info = this.authInfo(ctx);
    if (req.TTL > BigInt(MAX_LEASE_TTL)) throw new EtcdError('leaseTTLTooLarge');
    if (!this.hasSpace(leaseGrantCost)) await this.refuseNoSpace();
    let id = req.ID;
    while (id === 0n || (req.ID === 0n && this.lessor.has(id))) {
      id = randomBytes(8).readBigInt64BE(0) & 0x7fff_ffff_ffff_ffffn;
    }
    const r = await this.propose({ $case: 'leaseGrant', value: { ID: id, TTL: req.TTL } }, info);
    return this.withHeader(this.expectResponse(r, 'leaseGrant'));
  }

  async leaseRevoke(req: pb.LeaseRevokeRequest, ctx?: CallContext): Promise<pb.LeaseRevokeResponse> {
    const info = this.authInfo(ctx);
    if (!this.lessor.has(req.ID)) throw new EtcdError('leaseNotFound');
    checkLeaseRevokeAuth(this.auth, info, req.ID, this.leaseKeys);
    return this.withHeader(this.expectResponse(await this.propose({ $case: 'leaseRevoke', value: req }, info), 'leaseRevoke'));
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
    if (this.closed || this.failure !== undefined || !this.node.isLeader) return;
    for (const id of this.lessor.expired(LEASE_REVOKES_PER_CHECK)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      // The member's own revoke: no caller, no permission check.
      this.propose({ $case: 'leaseRevoke', value: { ID: id } }, null)
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
      raftIndex: BigInt(this.node.raft.status().commit),
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
    return this.expectResponse(await this.propose({ $case: 'alarm', value: req }, null), 'alarm');
  }

  /** Defragment, Hash, HashKV and Snapshot need the root role while auth is on, as in etcd. */
  private checkMaintenanceAuth(ctx: CallContext | undefined): void {
    if (!this.auth.enabled) return;
    try {
      this.auth.checkAdmin(this.authInfo(ctx));
    } catch (e) {
      const text = e instanceof EtcdError ? AUTH_PACKAGE_TEXT[e.code] : undefined;
      throw text === undefined ? e : new EtcdError('unknown', text);
    }
  }

  async defragment(_req: pb.DefragmentRequest, ctx?: CallContext): Promise<pb.DefragmentResponse> {
    this.checkMaintenanceAuth(ctx);
    await this.lastCommit;
    return { header: undefined };
  }

  async hash(_req: pb.HashRequest, ctx?: CallContext): Promise<pb.HashResponse> {
    this.checkMaintenanceAuth(ctx);
    await this.lastCommit;
    let h = 0;
    for (const r of this.storage.scanRecords(0, Number.MAX_SAFE_INTEGER)) h = crc32(r.value, h);
    for (const l of this.storage.scanLeases()) h = crc32(l.value, h);
    return { header: this.header(this.store.currentRev), hash: h >>> 0 };
  }

  async hashKV(req: pb.HashKVRequest, ctx?: CallContext): Promise<pb.HashKVResponse> {
    this.checkMaintenanceAuth(ctx);
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

  async *snapshot(_req: pb.SnapshotRequest, ctx?: CallContext): AsyncIterable<pb.SnapshotResponse> {
    this.checkMaintenanceAuth(ctx);
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

  /** Raft knows a leader (a lone member: itself, from just after start). */
  hasLeader(): boolean {
    return !this.closed && this.node.leader !== 0n;
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
    const raft = this.node.raft.status();
    return {
      hasLeader: leader,
      isLeader: this.node.isLeader,
      // The member became leader once, at start (as a single etcd member reports 1).
      leaderChanges: 1,
      // etcd's are raft indexes: the commit index and the applied index of the log.
      proposalsCommitted: raft.commit,
      proposalsApplied: raft.applied,
      proposalsPending: this.proposalsPending,
      proposalsFailed: this.proposalsFailed,
      dbSizeBytes: dbSize,
      dbSizeInUseBytes: inUse,
      // etcd reports the flag as given when it disables the quota (negative), else the quota in force.
      quotaBackendBytes: Number.isFinite(this.quota) ? this.quota : (this.cfg.quotaBackendBytes ?? 0),
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

  // --- Auth ---

  private authHeader(): pb.ResponseHeader {
    return this.header(this.store.currentRev);
  }

  /** An auth management change: root only (while auth is on), applied like every write. */
  private async authChange(ctx: CallContext | undefined, request: AuthChange): Promise<{ header: pb.ResponseHeader }> {
    const info = this.authInfo(ctx);
    this.auth.checkAdmin(info);
    this.expectResponse(await this.propose(request, info), 'auth');
    return { header: this.authHeader() };
  }

  /** The slow hash runs before anything is proposed; admin is checked before (so a refused caller
   * costs no hash) and again after it, right before proposing. */
  private async hashFor(ctx: CallContext | undefined, password: string): Promise<Buffer> {
    this.auth.checkAdmin(this.authInfo(ctx));
    return hashPassword(password);
  }

  authEnable(_req: pb.AuthEnableRequest, ctx?: CallContext): Promise<pb.AuthEnableResponse> {
    return this.authChange(ctx, { $case: 'authEnable', value: {} });
  }

  authDisable(_req: pb.AuthDisableRequest, ctx?: CallContext): Promise<pb.AuthDisableResponse> {
    return this.authChange(ctx, { $case: 'authDisable', value: {} });
  }

  async authenticate(req: pb.AuthenticateRequest): Promise<pb.AuthenticateResponse> {
    const hash = this.auth.passwordHashOf(req.name);
    // An unknown user costs a hash too: a failed login does not tell which part was wrong.
    this.dummyHash ??= hashPassword(simpleTokenPrefix());
    const ok = await checkPassword(req.password, hash ?? await this.dummyHash);
    if (!ok || hash === undefined) throw new EtcdError('authFailed');
    const r = await this.propose({ $case: 'authenticate', value: { name: req.name, simpleToken: simpleTokenPrefix() } }, null);
    return { header: this.authHeader(), token: this.expectResponse(r, 'auth').token };
  }

  async userAdd(req: pb.AuthUserAddRequest, ctx?: CallContext): Promise<pb.AuthUserAddResponse> {
    const noPassword = req.options?.noPassword ?? false;
    const passwordHash = noPassword ? Buffer.alloc(0) : await this.hashFor(ctx, req.password);
    return this.authChange(ctx, { $case: 'authUserAdd', value: { name: req.name, passwordHash, options: req.options } });
  }

  async userGet(req: pb.AuthUserGetRequest, ctx?: CallContext): Promise<pb.AuthUserGetResponse> {
    this.auth.checkUserGet(this.authInfo(ctx), req.name);
    return { header: this.authHeader(), roles: this.auth.userRoles(req.name) };
  }

  async userList(_req: pb.AuthUserListRequest, ctx?: CallContext): Promise<pb.AuthUserListResponse> {
    this.auth.checkAdmin(this.authInfo(ctx));
    return { header: this.authHeader(), users: this.auth.userNames() };
  }

  userDelete(req: pb.AuthUserDeleteRequest, ctx?: CallContext): Promise<pb.AuthUserDeleteResponse> {
    return this.authChange(ctx, { $case: 'authUserDelete', value: req });
  }

  async userChangePassword(req: pb.AuthUserChangePasswordRequest, ctx?: CallContext): Promise<pb.AuthUserChangePasswordResponse> {
    const passwordHash = await this.hashFor(ctx, req.password);
    return this.authChange(ctx, { $case: 'authUserChangePassword', value: { name: req.name, passwordHash } });
  }

  userGrantRole(req: pb.AuthUserGrantRoleRequest, ctx?: CallContext): Promise<pb.AuthUserGrantRoleResponse> {
    return this.authChange(ctx, { $case: 'authUserGrantRole', value: req });
  }

  userRevokeRole(req: pb.AuthUserRevokeRoleRequest, ctx?: CallContext): Promise<pb.AuthUserRevokeRoleResponse> {
    return this.authChange(ctx, { $case: 'authUserRevokeRole', value: req });
  }

  roleAdd(req: pb.AuthRoleAddRequest, ctx?: CallContext): Promise<pb.AuthRoleAddResponse> {
    return this.authChange(ctx, { $case: 'authRoleAdd', value: req });
  }

  async roleGet(req: pb.AuthRoleGetRequest, ctx?: CallContext): Promise<pb.AuthRoleGetResponse> {
    this.auth.checkRoleGet(this.authInfo(ctx), req.role);
    return { header: this.authHeader(), perm: this.auth.rolePermissions(req.role) };
  }

  async roleList(_req: pb.AuthRoleListRequest, ctx?: CallContext): Promise<pb.AuthRoleListResponse> {
    this.auth.checkAdmin(this.authInfo(ctx));
    return { header: this.authHeader(), roles: this.auth.roleNames() };
  }

  roleDelete(req: pb.AuthRoleDeleteRequest, ctx?: CallContext): Promise<pb.AuthRoleDeleteResponse> {
    return this.authChange(ctx, { $case: 'authRoleDelete', value: req });
  }

  roleGrantPermission(req: pb.AuthRoleGrantPermissionRequest, ctx?: CallContext): Promise<pb.AuthRoleGrantPermissionResponse> {
    return this.authChange(ctx, { $case: 'authRoleGrantPermission', value: req });
  }

  roleRevokePermission(req: pb.AuthRoleRevokePermissionRequest, ctx?: CallContext): Promise<pb.AuthRoleRevokePermissionResponse> {
    return this.authChange(ctx, { $case: 'authRoleRevokePermission', value: req });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of this.stopTimers) stop();
    await this.node.stop();
    for (const p of this.pending.values()) p.reject(new EtcdError('stopped'));
    this.pending.clear();
    await this.lastCommit.catch(() => undefined);
    await this.storage.close();
  }
}

interface Pending {
  readonly req: InternalRequest;
  resolve(r: ApplyResult): void;
  reject(e: Error): void;
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

