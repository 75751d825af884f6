// The embedded backend: one member's MVCC store, lessor and watch hub behind the V3Backend
// contract. Writes are encoded as InternalRequests, applied in order by the Applier, and answered
// once the storage commit that holds them is durable (concurrent commits share one fsync).
// With other members (--initial-cluster) the raft node talks to them through the peer transport
// (rafthttp/): a follower's proposals travel to the leader inside raft and are answered when this
// member applies them; linearizable reads wait for a ReadIndex; only the leader expires leases.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errorCodes, EtcdError, type ErrorCode } from '../backend/errors.js';
import type { AuthStatus, CallContext, V3Backend, WatchOutput, WatchSession } from '../backend/index.js';
import { checkDelete, checkPut, checkRange, checkTxn } from '../backend/validate.js';
import type * as pb from '../gen/etcdserverpb/rpc.js';
import { AlarmRequest_AlarmAction as AlarmAction, AlarmType } from '../gen/etcdserverpb/rpc.js';
import type { InternalRequest } from '../gen/serverpb/internal.js';
import type { HealthFacts } from '../backend/health.js';
import type { CoreStats } from '../metrics/index.js';
import { fromBin } from '../util/bytes.js';
import type { Clock } from '../util/clock.js';
import { Applier, type ApplyResponse, type ApplyResult } from './apply.js';
import {
  AuthStore, checkDeleteAuth, checkLeaseRevokeAuth, checkPassword, checkPutAuth, checkTxnAuth, hashPassword,
  JwtTokens, SimpleTokens, simpleTokenPrefix, SYSTEM, type AuthInfo, type JwtOptions, type LeaseKeys, type TokenProvider,
} from './auth/index.js';
import { clusterId, memberId } from './cluster/ids.js';
import { Membership, type Member, type MemberChange } from './cluster/members.js';
import { rangeOp, txnOp } from './kv.js';
import { Lessor, MAX_LEASE_TTL } from './lease/lessor.js';
import { fitsQuota, leaseGrantCost, putCost, quotaBytes, txnCost } from './quota.js';
import { startCompactor, type AutoCompaction } from './compactor.js';
import { MvccStore } from './mvcc/store.js';
import { RaftNode } from './node.js';
import { confChangeContext, decodeConfChange, type ConfChange, type Entry, type Message, type ReadState, type Snapshot } from './raft/index.js';
import { Transport, type MemberInfo, type PeerTls } from './rafthttp/transport.js';
import { ReadIndexBatcher } from './read-index.js';
import { RequestIdGenerator } from './request-id.js';
import {
  decodeChangeContext, decodeClusterEntry, decodeProposal, encodeChangeContext, encodeClusterEntry, encodeProposal, isClusterEntry, proposalId,
} from './proposal.js';
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
  /** --heartbeat-interval: the raft tick (default 100 ms). */
  readonly heartbeatIntervalMs?: number;
  /** --initial-cluster (default: this member alone at its advertised peer URLs). */
  readonly initialCluster?: readonly { readonly name: string; readonly peerUrls: readonly string[] }[];
  /** A member joining a running cluster (--initial-cluster-state existing): what the cluster told it. */
  readonly join?: JoinInfo;
  /** Where to listen for peers (undefined: no peer listener). */
  readonly listenPeerUrls?: readonly URL[];
  /** TLS of the peer listeners and of requests to https:// peers. */
  readonly peerTls?: PeerTls;
  readonly snapshotCatchupEntries?: number;
  /** Observes a peer probe's round trip (etcd_network_peer_round_trip_time_seconds). */
  readonly onPeerRoundTrip?: (toHex: string, seconds: number) => void;
  readonly onPeerSnapshot?: (direction: 'send' | 'receive', peerHex: string, ok: boolean) => void;
}

/** What a joining member learns from the running cluster's GET /members. */
export interface JoinInfo {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly members: readonly Member[];
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
/** This member's and its cluster's IDs (hex), fixed when the member first starts. */
const META_MEMBER_ID = 'memberId';
const META_CLUSTER_ID = 'clusterId';
/** etcd's HealthInterval: a peer counts as connected for membership checks after this long. */
const HEALTH_INTERVAL_MS = 5_000;
/** A linearizable read's ReadIndex unanswered this long is asked again (lost on the way). */
const READ_INDEX_RETRY_MS = 500;

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
  /** The replicated member list (this member's view at its applied index). */
  private membership: Membership;
  private transport: Transport | undefined;
  /** Raft index of the last entry applied (every entry, not only requests). */
  private raftApplied = 0;
  private appliedWaiters: { index: number; resolve(): void }[] = [];
  /** Linearizable reads waiting for a ReadIndex (read-index.ts). */
  private readonly reads: ReadIndexBatcher;
  private readonly clusterPending = new Map<bigint, { resolve(applied: boolean): void }>();
  /** Snapshot data files received from the leader, by snapshot index, until raft installs one. */
  private readonly incomingSnapshots = new Map<number, string>();
  private wasLeader = false;
  private readonly requestTimeoutMs: number;
  /** The raft node in front of apply: every write is proposed, logged (WAL), committed, applied. */
  private readonly node: RaftNode;
  /** Proposals of this member waiting for their entry to be applied, by request ID. */
  private readonly pending = new Map<bigint, Pending>();
  private readonly requestIds: RequestIdGenerator;
  /** Resolves when everything applied so far is durable. */
  private lastCommit: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  /** Told once when the disk fails and writes start being refused (the server logs it). */
  onStorageFailure: ((err: Error) => void) | undefined;
  /** Called once when this member learns it was removed from the cluster (it applied its own
   * removal, or a peer refused it with 410): etcd stops the member then. */
  onRemoved: (() => void) | undefined;
  /** This follower's leader refuses peer connections (its process is gone): its lease ended early. */
  onLeaderGone: ((leaderIdHex: string) => void) | undefined;
  private removedSignalled = false;
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
    this.loadLeases();
    this.hub = new WatchHub(this.store, this.storage);
    this.quota = quotaBytes(cfg.quotaBackendBytes ?? 0);
    if (Number.isFinite(this.quota)) this.measureSpace();
    // A data dir made by `snapshot restore` carries the cluster token it was restored with (a new
    // cluster: new member and cluster IDs, as etcd's restore --initial-cluster-token gives).
    const token = this.storage.getMeta(META_CLUSTER_TOKEN)?.toString() ?? cfg.initialClusterToken;
    const walDir = join(cfg.dataDir, 'member', 'wal');
    const newMember = !existsSync(walDir) || readdirSync(walDir).length === 0;
    const ids = this.identity(token, newMember);
    this.memberId = ids.memberId;
    this.clusterId = ids.clusterId;
    this.membership = ids.membership;
    this.requestIds = new RequestIdGenerator(this.memberId, cfg.clock.nowMs());
    this.requestTimeoutMs = 5_000 + 2 * cfg.electionTimeoutMs;
    this.reads = new ReadIndexBatcher({
      send: (ctx) => this.node.readIndex(ctx),
      defer: (fn) => setImmediate(fn),
      nowMs: () => cfg.clock.nowMs(),
      retryMs: READ_INDEX_RETRY_MS,
      timeoutMs: this.requestTimeoutMs,
      timeoutError: () => new EtcdError('timeout'),
      closedError: () => new EtcdError('stopped'),
    });
    const tickMs = cfg.heartbeatIntervalMs ?? TICK_MS;
    // Each (re)start of a lone member elects it in a new term, as etcd's single member does.
    this.node = new RaftNode({
      id: this.memberId,
      initialVoters: ids.voters,
      walDir,
      clock: cfg.clock,
      tickMs,
      electionTicks: Math.max(2, Math.round(cfg.electionTimeoutMs / tickMs)),
      heartbeatTicks: 1,
      snapshotCount: cfg.snapshotCount ?? DEFAULT_SNAPSHOT_COUNT,
      ...(cfg.snapshotCatchupEntries !== undefined ? { snapshotCatchupEntries: cfg.snapshotCatchupEntries } : {}),
      apply: (entries) => this.applyEntries(entries),
      flushState: () => this.storage.flushed(),
      appliedIndex: this.applier.appliedIndex,
      onError: (err) => this.storageFailed(err),
      send: (msgs) => this.transport?.send(msgs),
      onReadStates: (rs) => this.onReadStates(rs),
      installSnapshot: (snap) => this.installSnapshot(snap),
      ...(cfg.onWalSyncSeconds ? { onWalSyncSeconds: cfg.onWalSyncSeconds } : {}),
    });
    this.raftApplied = this.applier.appliedIndex;
    if (cfg.listenPeerUrls !== undefined) this.transport = this.createTransport();
    this.node.start();
    this.startTimers();
    if (this.multiMember) this.publishAttributes();
  }

  /**
   * Who this member is. A new member (empty WAL) takes its cluster from the flags: a new cluster's
   * members and IDs derived from --initial-cluster as etcd derives them, or what a running
   * cluster told a joiner; it records them with its data. A restarted member reads them back.
   */
  private identity(token: string, newMember: boolean): { memberId: bigint; clusterId: bigint; membership: Membership; voters: bigint[] } {
    const cfg = this.cfg;
    const stored = Membership.load(this.storage);
    const storedMember = this.storage.getMeta(META_MEMBER_ID)?.toString();
    const storedCluster = this.storage.getMeta(META_CLUSTER_ID)?.toString();
    if (!newMember && stored !== undefined && storedMember !== undefined && storedCluster !== undefined) {
      const id = BigInt('0x' + storedMember);
      return { memberId: id, clusterId: BigInt('0x' + storedCluster), membership: stored, voters: [] };
    }
    let id: bigint;
    let cid: bigint;
    let membership: Membership;
    let voters: bigint[];
    if (cfg.join !== undefined) {
      id = cfg.join.memberId;
      cid = cfg.join.clusterId;
      membership = Membership.of(cfg.join.members);
      // The configuration (and this member in it) comes from the leader's log or snapshot.
      voters = [];
    } else {
      const initial = cfg.initialCluster ?? [{ name: cfg.name, peerUrls: cfg.advertisePeerUrls }];
      const lone = initial.length === 1;
      const members = initial.map((m): Member => {
        const mid = memberId(m.peerUrls, token);
        // A lone member knows everything about itself; others learn client URLs by publishing.
        const self = m.name === cfg.name;
        return { id: mid, name: m.name, peerURLs: [...m.peerUrls], clientURLs: lone && self ? [...cfg.advertiseClientUrls] : [], isLearner: false };
      });
      id = members.find((m) => m.name === cfg.name)?.id ?? memberId(cfg.advertisePeerUrls, token);
      voters = members.map((m) => m.id);
      cid = clusterId(voters);
      membership = Membership.of(members);
    }
    membership.save(this.storage);
    this.storage.stage({ t: 'meta', name: META_MEMBER_ID, value: Buffer.from(id.toString(16)) });
    this.storage.stage({ t: 'meta', name: META_CLUSTER_ID, value: Buffer.from(cid.toString(16)) });
    this.lastCommit = this.storage.commit();
    return { memberId: id, clusterId: cid, membership, voters };
  }

  /** More than this member in the configuration (or joining one): the cluster code paths apply. */
  private get multiMember(): boolean {
    return this.membership.size > 1 || this.cfg.join !== undefined;
  }

  private createTransport(): Transport {
    return new Transport({
      clusterIdHex: () => this.clusterId.toString(16),
      memberIdHex: () => this.memberId.toString(16),
      receive: (msgs: Message[]) => this.node.receive(msgs),
      receiveSnapshot: (m, file) => {
        const old = this.incomingSnapshots.get(m.snapshot.meta.index);
        if (old !== undefined) void rm(old, { force: true });
        this.incomingSnapshots.set(m.snapshot.meta.index, file);
        this.node.receive([m]);
      },
      snapshotFile: async () => {
        await this.lastCommit;
        const dir = await mkdtemp(join(tmpdir(), 'etcd-peer-snap-'));
        const file = join(dir, 'db');
        await this.storage.backup(file);
        return { file, cleanup: () => rm(dir, { recursive: true, force: true }) };
      },
      snapshotSent: (to, ok) => this.node.reportSnapshot(to, ok),
      members: () => this.membership.list().map(memberInfo),
      isRemoved: (id) => this.membership.isRemoved(id),
      promote: async (id) => {
        try {
          await this.promoteHere(id);
          return '';
        } catch (e) {
          return e instanceof EtcdError ? e.code : 'unknown';
        }
      },
      onRemoved: () => this.removed(),
      onPeerGone: (id) => {
        if (this.node.reportPeerGone(id)) this.onLeaderGone?.(id.toString(16));
      },
      renewLease: (id) => (this.node.isLeader && this.lessor.has(id) ? this.lessor.renew(id) : -1),
      snapDir: join(this.cfg.dataDir, 'member', 'snap', 'incoming'),
      ...(this.cfg.onPeerRoundTrip ? { onRoundTrip: this.cfg.onPeerRoundTrip } : {}),
      ...(this.cfg.onPeerSnapshot ? { onSnapshot: this.cfg.onPeerSnapshot } : {}),
    }, this.cfg.peerTls);
  }

  private removed(): void {
    if (this.removedSignalled || this.closed) return;
    this.removedSignalled = true;
    this.onRemoved?.();
  }

  /** Binds the peer listeners (when configured); resolves with the bound ports. */
  async listenPeers(): Promise<number[]> {
    if (this.transport === undefined || this.cfg.listenPeerUrls === undefined) return [];
    this.updatePeers();
    return this.transport.listen(this.cfg.listenPeerUrls);
  }

  /** The transport talks to every other member at its first peer URL. */
  private updatePeers(): void {
    const peers = new Map<bigint, string>();
    for (const m of this.membership.list()) if (m.id !== this.memberId && m.peerURLs[0] !== undefined) peers.set(m.id, m.peerURLs[0]);
    this.transport?.setPeers(peers);
  }

  /**
   * etcd's publish: this member's name and client URLs go through the log so every member lists
   * them. Retried until applied (no leader yet, or a proposal lost in a leader change).
   */
  private publishAttributes(): void {
    void (async () => {
      while (!this.closed) {
        const me = this.membership.get(this.memberId);
        if (me !== undefined && me.name === this.cfg.name && sameList(me.clientURLs, this.cfg.advertiseClientUrls)) return;
        try {
          await this.proposeClusterChange({ op: 'attrs', id: this.memberId.toString(16), name: this.cfg.name, clientURLs: [...this.cfg.advertiseClientUrls] });
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
  }

  private startTimers(): void {
    const { clock } = this.cfg;
    if (this.multiMember) {
      // Proposals and reads lost in a leader change are failed after etcd's request timeout.
      const sweep = (): void => {
        this.sweepTimeouts();
        this.stopTimers[2] = clock.after(100, sweep);
      };
      this.stopTimers[2] = clock.after(100, sweep);
    }
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
   * in the WAL, committed and applied (reads see it; its LMDB commit may still be under way).
   */
  private async propose(request: InternalRequest['request'], info: AuthInfo | null): Promise<ApplyResult> {
    if (this.closed) throw new EtcdError('stopped');
    if (this.failure !== undefined) throw new EtcdError('failed', `etcdserver: storage failed: ${this.failure.message}`);
    const header = { ID: this.requestIds.next(), username: info?.username ?? '', authRevision: BigInt(info?.revision ?? 0) };
    const req: InternalRequest = { header, request };
    const { data, requestBytes } = encodeProposal(req);
    if (requestBytes > this.cfg.maxRequestBytes) throw new EtcdError('requestTooLarge');
    const backlog = this.node.storageBacklog();
    if (backlog !== undefined) await backlog;
    if (!this.node.isLeader) {
      if (this.multiMember) await this.withTimeout(this.node.whenLeaderKnown());
      else await this.node.whenLeader();
    }
    this.proposalsPending++;
    let result: ApplyResult;
    try {
      result = await new Promise<ApplyResult>((resolve, reject) => {
        const deadlineMs = this.multiMember ? this.cfg.clock.nowMs() + this.requestTimeoutMs : Infinity;
        this.pending.set(header.ID, { req, resolve, reject, deadlineMs });
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
   * The disk failed (a WAL write or fdatasync, an LMDB commit): from now on writes are refused with
   * "etcdserver: storage failed: <why>" and /health fails, until a restart (which replays the WAL;
   * nothing acknowledged depends on the failed write). Proposals waiting for their entry are
   * refused now: the raft node has stopped and will never apply them. Returns the first failure.
   */
  private storageFailed(err: unknown): Error {
    if (this.failure !== undefined) return this.failure;
    const failure = err instanceof Error ? err : new Error(String(err));
    this.failure = failure;
    this.onStorageFailure?.(failure);
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(new EtcdError('failed', `etcdserver: storage failed: ${failure.message}`));
    return failure;
  }

  /**
   * The raft node's apply: committed entries in log order, applied now through the one
   * deterministic Applier (skipping what storage already holds: a restart replays the WAL from the
   * last snapshot). Watchers hear and proposers are answered at once, as etcd answers after its
   * in-memory apply: the entries are already durable in the WAL (a crash replays them), and reads
   * see them — current values from the key index, older revisions and watch catch-up through the
   * storage's overlay of staged records. The returned promise is the batch's storage commit (no
   * fsync), which the node chains (snapshots wait for it) without holding the next batch for it.
   */
  private applyEntries(entries: readonly Entry[]): Promise<void> {
    const results: [Pending | undefined, ApplyResult][] = [];
    const clusterDone: [bigint, boolean][] = [];
    for (const e of entries) {
      if (e.index <= this.applier.appliedIndex) continue;
      if (e.type === 'confChange') {
        clusterDone.push(this.applyConfChange(e));
        continue;
      }
      const id = proposalId(e.data);
      if (id === undefined) continue;
      if (isClusterEntry(e.data)) {
        clusterDone.push([id, this.applyMemberChange(decodeClusterEntry<MemberChange>(e.data), e.index)]);
        continue;
      }
      const p = this.pending.get(id);
      if (p !== undefined) this.pending.delete(id);
      results.push([p, this.applier.apply(p?.req ?? decodeProposal(e.data), e.index)]);
    }
    const last = entries[entries.length - 1];
    if (last !== undefined && last.index > this.raftApplied) this.raftApplied = last.index;
    if (clusterDone.length > 0) this.updatePeers();
    let committed = Promise.resolve();
    if (results.length > 0 || clusterDone.length > 0) {
      committed = this.storage.commit().then(
        () => {
          if (Number.isFinite(this.quota) && this.cfg.clock.nowMs() - this.measuredAtMs >= SPACE_MEASURE_MS) this.measureSpace();
        },
        (err: unknown) => {
          throw this.storageFailed(err);
        },
      );
      this.lastCommit = committed;
    }
    for (const [p, r] of results) {
      if (r.changes.length > 0) this.hub.notify(r.rev, r.changes);
      p?.resolve(r);
    }
    for (const [id, ok] of clusterDone) {
      const w = this.clusterPending.get(id);
      this.clusterPending.delete(id);
      w?.resolve(ok);
    }
    this.releaseAppliedWaiters();
    return committed;
  }

  /** A conf change entry's context is [u64 BE request ID][the MemberChange as JSON]. */
  private applyConfChange(e: Entry): [bigint, boolean] {
    const ctx = confChangeContext(e.data);
    const cc = decodeConfChange(e.data);
    if (ctx.length < 8 || cc === undefined) {
      this.applier.markApplied(e.index);
      return [0n, false];
    }
    const { id, change } = decodeChangeContext<MemberChange>(ctx);
    return [id, this.applyMemberChange(change, e.index)];
  }

  private applyMemberChange(c: MemberChange, index: number): boolean {
    const ok = this.membership.apply(c);
    if (ok && c.op === 'remove' && BigInt('0x' + c.id) === this.memberId) queueMicrotask(() => this.removed());
    if (ok) this.membership.save(this.storage);
    this.applier.markApplied(index);
    return ok;
  }

  /** Proposes a membership change (a normal entry, or a raft conf change carrying it); resolves
   * with whether it applied. */
  private async proposeClusterChange(change: MemberChange, cc?: ConfChange): Promise<boolean> {
    if (this.closed) throw new EtcdError('stopped');
    if (!this.node.isLeader) await this.withTimeout(this.node.whenLeaderKnown());
    const id = this.requestIds.next();
    return this.withTimeout(new Promise<boolean>((resolve, reject) => {
      this.clusterPending.set(id, { resolve });
      const ok = cc !== undefined
        ? this.node.proposeConfChange(cc, encodeChangeContext(id, change))
        : this.node.propose(encodeClusterEntry(id, change));
      if (!ok) {
        this.clusterPending.delete(id);
        reject(new EtcdError('noLeader'));
      }
    }), () => this.clusterPending.delete(id));
  }

  /** p, or etcd's "request timed out" after the request timeout. */
  private withTimeout<T>(p: Promise<T>, onTimeout?: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.cfg.clock.after(this.requestTimeoutMs, () => {
        onTimeout?.();
        reject(new EtcdError('timeout'));
      });
      p.then((v) => { cancel(); resolve(v); }, (e: unknown) => { cancel(); reject(e); });
    });
  }

  private sweepTimeouts(): void {
    const now = this.cfg.clock.nowMs();
    for (const [id, p] of this.pending) {
      if (p.deadlineMs > now) continue;
      this.pending.delete(id);
      p.reject(new EtcdError('timeout'));
    }
    this.reads.sweep();
    if (this.node.isLeader !== this.wasLeader) {
      this.wasLeader = this.node.isLeader;
      // Renewals went to the old leader: give every lease its full TTL again (etcd's Promote).
      if (this.wasLeader) this.lessor.promote(this.cfg.electionTimeoutMs);
    }
  }

  // --- linearizable reads: ReadIndex, then wait until applied ---

  /** Resolves once this member has applied everything committed when it was called. */
  private linearizableBarrier(): Promise<void> {
    if (!this.multiMember) return Promise.resolve();
    return this.reads.wait();
  }

  private onReadStates(rs: readonly ReadState[]): void {
    const hit = this.reads.answered(rs);
    if (hit === undefined) return;
    if (this.raftApplied >= hit.index) hit.release();
    else this.appliedWaiters.push({ index: hit.index, resolve: hit.release });
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const ready = this.appliedWaiters.filter((w) => w.index <= this.raftApplied);
    if (ready.length === 0) return;
    this.appliedWaiters = this.appliedWaiters.filter((w) => w.index > this.raftApplied);
    for (const w of ready) w.resolve();
  }

  private loadLeases(): void {
    this.lessor.clear();
    for (const { id, value } of this.storage.scanLeases()) this.lessor.grant(id, value.readDoubleBE(0));
    for (const kv of this.store.liveKeys({ key: '', end: null })) {
      if (kv.lease !== 0n) this.lessor.attach(kv.lease, kv.key.toString('latin1'));
    }
  }

  /**
   * A leader's snapshot (this member fell behind its log): the data file that came with it
   * replaces the storage, and everything held in memory is rebuilt from it, as a restart would.
   */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    const file = this.incomingSnapshots.get(snap.meta.index);
    if (file === undefined) throw new Error(`snapshot ${snap.meta.index}: its data file never arrived`);
    this.incomingSnapshots.delete(snap.meta.index);
    await this.lastCommit.catch(() => undefined);
    await this.storage.replaceWith(file, [META_MEMBER_ID, META_CLUSTER_ID, META_CLUSTER_TOKEN]);
    await rm(file, { force: true });
    this.store.reload();
    this.auth.load();
    this.applier.load();
    this.loadLeases();
    this.membership = Membership.load(this.storage) ?? this.membership;
    this.updatePeers();
    this.raftApplied = Math.max(this.raftApplied, this.applier.appliedIndex);
    this.hub.restored();
    this.releaseAppliedWaiters();
    for (const [index, f] of this.incomingSnapshots) {
      // Older ones raft ignored: never needed.
      if (index < snap.meta.index) {
        this.incomingSnapshots.delete(index);
        void rm(f, { force: true });
      }
    }
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
    if (ctx?.internal === true) return SYSTEM;
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
    if (!req.serializable && this.multiMember) await this.linearizableBarrier();
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
      // Read-only txns need no write: run them against the current state — in a cluster once
      // this member has applied what the leader had committed, unless every range is
      // serializable (etcd's isTxnSerializable: top-level ranges only).
      if (this.multiMember && !isSerializableTxn(req)) await this.linearizableBarrier();
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
    // LMDB's live pages, plus what is applied but still waiting for its commit (up to 100 ms).
    this.usedBytes = this.storage.usedBytes() + this.storage.pendingBytes();
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
    if (this.node.isLeader || !this.multiMember) return { header, ID: req.ID, TTL: BigInt(this.lessor.renew(req.ID)) };
    // Only the leader tracks expiry: a follower forwards the renewal (etcd's peer /leases).
    await this.withTimeout(this.node.whenLeaderKnown());
    const ttl = await this.transport?.renewLeaseAt(this.node.leader, req.ID);
    if (ttl === undefined) throw new EtcdError('noLeader');
    return { header, ID: req.ID, TTL: BigInt(Math.max(0, ttl)) };
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

  /** The leader proposes a revoke for every expired lease (followers never expire one). */
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
    return this.membership.list().map((m) => ({
      ID: m.id, name: m.name, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs], isLearner: m.isLearner,
    }));
  }

  async memberList(_req: pb.MemberListRequest): Promise<pb.MemberListResponse> {
    return { header: { ...this.header(0) }, members: this.members() };
  }

  // Membership changes, checked as etcd checks them with --strict-reconfig-check (its default):
  // a change must leave a quorum of started (published) and connected voters.

  /**
   * Voters other than `except`: how many are started (have published their name) and connected
   * for etcd's HealthInterval (5 s) at least.
   */
  private voterHealth(except?: bigint): { total: number; started: number; connected: number } {
    let total = 0;
    let started = 0;
    let connected = 0;
    const since = Date.now() - HEALTH_INTERVAL_MS;
    for (const m of this.membership.list()) {
      if (m.isLearner || m.id === except) continue;
      total++;
      if (m.name !== '') started++;
      const active = this.transport?.activeSince(m.id);
      if (m.id === this.memberId || (active !== undefined && active <= since)) connected++;
    }
    return { total, started, connected };
  }

  /** Parsed peer URLs (invalidPeerURLs); with `taken`, also refused when another member has one. */
  private checkPeerUrls(urls: readonly string[], except?: bigint, taken = true): string[] {
    const out: string[] = [];
    for (const u of urls) {
      let url: URL;
      try {
        url = new URL(u.trim());
      } catch {
        throw new EtcdError('invalidPeerURLs');
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.port === '' || (url.pathname !== '/' && url.pathname !== '')) throw new EtcdError('invalidPeerURLs');
      out.push(u.trim());
    }
    if (out.length === 0) throw new EtcdError('invalidPeerURLs');
    if (taken) this.checkPeerUrlsFree(out, except);
    return out.sort();
  }

  private checkPeerUrlsFree(urls: readonly string[], except?: bigint): void {
    const out = urls;
    for (const m of this.membership.list()) {
      if (m.id !== except && m.peerURLs.some((p) => out.includes(p))) throw new EtcdError('peerURLExist');
    }
  }

  private clusterHeader(): pb.ResponseHeader {
    return this.header(this.store.currentRev);
  }

  async memberAdd(req: pb.MemberAddRequest): Promise<pb.MemberAddResponse> {
    // etcd's order: the URLs parse, then the quorum checks (mayAddMember), then what its apply
    // validates (peer URL taken, too many learners, ID taken).
    const urls = this.checkPeerUrls(req.peerURLs, undefined, false);
    const h = this.voterHealth();
    if (!req.isLearner) {
      // etcd lets a lone member add a second one (restoring a cluster from one member's data).
      const lone = h.started === 1 && h.total === 1;
      if (!lone && h.started < Math.floor((h.total + 1) / 2) + 1) throw new EtcdError('notEnoughStartedMembers');
    }
    // Voter or learner: every voter must have been connected for a while (etcd's isConnectedFullySince).
    if (h.connected < h.total) throw new EtcdError('unhealthy');
    this.checkPeerUrlsFree(urls);
    if (req.isLearner && this.membership.list().filter((m) => m.isLearner).length >= 1) throw new EtcdError('tooManyLearners');
    // etcd's NewMember: the peer URLs, the cluster token and the time make the ID.
    const id = memberId(urls, `${this.cfg.initialClusterToken}${this.cfg.clock.nowMs()}`);
    if (this.membership.get(id) !== undefined || this.membership.isRemoved(id)) throw new EtcdError('memberExist');
    const ok = await this.proposeClusterChange(
      { op: 'add', id: id.toString(16), peerURLs: urls, isLearner: req.isLearner },
      { type: req.isLearner ? 'addLearner' : 'addVoter', nodeId: id },
    );
    if (!ok) throw new EtcdError('memberExist');
    return {
      header: this.clusterHeader(),
      member: { ID: id, name: '', peerURLs: urls, clientURLs: [], isLearner: req.isLearner },
      members: this.members(),
    };
  }

  async memberRemove(req: pb.MemberRemoveRequest): Promise<pb.MemberRemoveResponse> {
    const m = this.membership.get(req.ID);
    if (m === undefined) throw new EtcdError('memberNotFound');
    if (!m.isLearner) {
      const h = this.voterHealth(req.ID);
      if (h.started < Math.floor(h.total / 2) + 1) throw new EtcdError('notEnoughStartedMembers');
      // A member that is down is safe to remove: it is not part of the working quorum.
      const down = req.ID !== this.memberId && this.transport?.activeSince(req.ID) === undefined;
      if (!down && h.connected < Math.floor(h.total / 2) + 1) throw new EtcdError('unhealthy');
    }
    const ok = await this.proposeClusterChange({ op: 'remove', id: req.ID.toString(16) }, { type: 'remove', nodeId: req.ID });
    if (!ok) throw new EtcdError('memberNotFound');
    return { header: this.clusterHeader(), members: this.members() };
  }

  async memberUpdate(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse> {
    if (this.membership.get(req.ID) === undefined) throw new EtcdError('memberNotFound');
    const urls = this.checkPeerUrls(req.peerURLs, req.ID);
    const ok = await this.proposeClusterChange({ op: 'update', id: req.ID.toString(16), peerURLs: urls });
    if (!ok) throw new EtcdError('memberNotFound');
    return { header: this.clusterHeader(), members: this.members() };
  }

  /** Only the leader knows whether a learner caught up: a follower forwards (etcd does too). */
  async memberPromote(req: pb.MemberPromoteRequest): Promise<pb.MemberPromoteResponse> {
    const m = this.membership.get(req.ID);
    if (m === undefined) throw new EtcdError('memberNotFound');
    if (!m.isLearner) throw new EtcdError('notLearner');
    if (this.node.isLeader || !this.multiMember) {
      await this.promoteHere(req.ID);
    } else {
      await this.withTimeout(this.node.whenLeaderKnown());
      const code = await this.transport?.promoteAt(this.node.leader, req.ID);
      if (code === undefined) throw new EtcdError('noLeader');
      if (code !== '') throw new EtcdError((errorCodes as readonly string[]).includes(code) ? code as ErrorCode : 'unknown');
    }
    return { header: this.clusterHeader(), members: this.members() };
  }

  /** On the leader: a learner whose log matches at least 90% of the leader's is promoted. */
  private async promoteHere(id: bigint): Promise<void> {
    const m = this.membership.get(id);
    if (m === undefined) throw new EtcdError('memberNotFound');
    if (!m.isLearner) throw new EtcdError('notLearner');
    if (!this.node.isLeader) throw new EtcdError('notLeader');
    const match = this.node.raft.matchOf(id) ?? 0;
    const leaderMatch = this.node.raft.matchOf(this.memberId) ?? 0;
    if (match < leaderMatch * 0.9) throw new EtcdError('learnerNotReady');
    const h = this.voterHealth();
    if (h.started + 1 < Math.floor((h.total + 1) / 2) + 1) throw new EtcdError('notEnoughStartedMembers');
    const ok = await this.proposeClusterChange({ op: 'promote', id: id.toString(16) }, { type: 'addVoter', nodeId: id });
    if (!ok) throw new EtcdError('memberNotFound');
  }

  // --- Maintenance ---

  async status(_req: pb.StatusRequest): Promise<pb.StatusResponse> {
    await this.lastCommit.catch(() => undefined);
    const { dbSize, inUse } = this.storage.sizes();
    // Raft's applied index, the leader's empty entries included (as etcd's getAppliedIndex): a
    // fresh member reports its first election's entry, not 0 (which JSON would leave out).
    const index = BigInt(Math.max(this.raftApplied, this.applier.appliedIndex));
    const errors = this.applier.alarms.map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm] ?? a.alarm} `);
    return {
      header: this.header(this.store.currentRev),
      version: SERVER_VERSION,
      dbSize: BigInt(dbSize),
      leader: this.hasLeader() ? this.node.leader : 0n,
      raftIndex: BigInt(this.node.raft.status().commit),
      raftTerm: this.term,
      raftAppliedIndex: index,
      errors,
      dbSizeInUse: BigInt(inUse),
      isLearner: this.membership.get(this.memberId)?.isLearner ?? false,
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
    if (!this.multiMember) {
      if (req.targetID !== this.memberId) throw new EtcdError('badLeaderTransferee');
      return { header: undefined };
    }
    if (!this.node.isLeader) throw new EtcdError('notLeader');
    const target = this.membership.get(req.targetID);
    if (target === undefined || target.isLearner) throw new EtcdError('badLeaderTransferee');
    if (req.targetID === this.memberId) return { header: this.header(this.store.currentRev) };
    this.node.transferLeadership(req.targetID);
    // etcd waits for the transfer (bounded by the election timeout and then some).
    const until = this.cfg.clock.nowMs() + this.requestTimeoutMs;
    while (this.node.leader !== req.targetID) {
      if (this.cfg.clock.nowMs() > until) throw new EtcdError('timeout');
      await new Promise((r) => setTimeout(r, 20));
    }
    return { header: this.header(this.store.currentRev) };
  }

  /** Watchers open on this member (every gRPC, gateway and v2 watch counts; etcd's watcher_total). */
  watcherCount(): number {
    return this.hub.size;
  }

  /** Raft knows a leader (a lone member: itself, from just after start). */
  hasLeader(): boolean {
    return !this.closed && this.node.leader !== 0n;
  }

  isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner ?? false;
  }

  healthFacts(): HealthFacts {
    return {
      hasLeader: this.hasLeader(),
      isLearner: this.isLearner(),
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
      // A lone member sees one leader change, at start (as a single etcd member reports 1).
      leaderChanges: this.node.leaderChanges,
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
      peers: this.transport?.stats() ?? [],
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

  authStatus(): AuthStatus {
    return { enabled: this.auth.enabled, revision: this.auth.revision };
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
    await this.transport?.close();
    await this.node.stop();
    this.reads.close();
    for (const f of this.incomingSnapshots.values()) await rm(f, { force: true });
    for (const p of this.pending.values()) p.reject(new EtcdError('stopped'));
    this.pending.clear();
    await this.lastCommit.catch(() => undefined);
    await this.storage.close();
  }
}

interface Pending {
  readonly req: InternalRequest;
  /** Failed with etcd's "request timed out" after this (Infinity for a lone member). */
  readonly deadlineMs: number;
  resolve(r: ApplyResult): void;
  reject(e: Error): void;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function memberInfo(m: Member): MemberInfo {
  return { id: m.id.toString(16), name: m.name, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs], isLearner: m.isLearner };
}

function isReadOnlyTxn(t: pb.TxnRequest): boolean {
  return [...t.success, ...t.failure].every((op) => {
    const r = op.request;
    return r?.$case === 'requestRange' || (r?.$case === 'requestTxn' && isReadOnlyTxn(r.value));
  });
}

function isSerializableTxn(t: pb.TxnRequest): boolean {
  return [...t.success, ...t.failure].every((op) => op.request?.$case === 'requestRange' && op.request.value.serializable);
}

function hasPut(t: pb.TxnRequest): boolean {
  return [...t.success, ...t.failure].some((op) => {
    const r = op.request;
    return r?.$case === 'requestPut' || (r?.$case === 'requestTxn' && hasPut(r.value));
  });
}

