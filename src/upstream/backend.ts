// The upstream backend: the V3Backend contract served by a real etcd v3 cluster over grpc-js
// (gateway mode). Every unary call has a deadline; reads move to another endpoint when one fails;
// a write is sent again only when the failure proves it never executed (see errors.ts).
import * as grpc from '@grpc/grpc-js';
import type { CallContext, V3Backend, WatchOutput, WatchSession } from '../backend/index.js';
import type { HealthFacts } from '../backend/health.js';
import * as pb from '../gen/etcdserverpb/rpc.js';
import { LeaseKeepAliveMux } from './keepalive.js';
import { EndpointPool, requireLeader, type Endpoint, type UpstreamTls } from './pool.js';
import { isEndpointFailure, neverExecuted, toBackendError } from './errors.js';
import { UpstreamWatchHub } from './watch.js';
import type { UnaryError, UnaryMethod } from './unary.js';

export interface UpstreamConfig {
  /** host:port of each member's client endpoint. */
  readonly endpoints: readonly string[];
  /** Budget of one client request, retries included (ms). */
  readonly timeoutMs: number;
  readonly tls?: UpstreamTls | undefined;
  readonly maxRequestBytes: number;
  readonly watchBacklogBytesMax: number;
  /** How often every endpoint's health is probed (ms). */
  readonly probeIntervalMs?: number;
  /** --user: the gateway authenticates as this user for requests that carry no token of their own. */
  readonly user?: { readonly name: string; readonly password: string } | undefined;
}

type Kind = 'read' | 'write';
/** How a call reaches an endpoint: a unary method, or a function sending it (the read batcher). */
type Send<Q, R> = UnaryMethod<Q, R> | ((ep: Endpoint, req: Q, token: string | undefined, deadline: number, cb: (err: UnaryError | null, resp?: R) => void) => void);

const RETRY_PAUSE_MS = 100;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Metadata of one upstream call: the caller's token passed through, and require-leader. */
export function metadataOf(ctx: CallContext | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (ctx?.token !== undefined) md.set('token', ctx.token);
  return requireLeader(md);
}

/** A txn that only reads is as safe to repeat as a range. */
function txnKind(req: pb.TxnRequest): Kind {
  const readOnly = (ops: pb.RequestOp[]): boolean => ops.every((op) => op.request?.$case === 'requestRange');
  return readOnly(req.success) && readOnly(req.failure) ? 'read' : 'write';
}

export class UpstreamBackend implements V3Backend {
  readonly pool: EndpointPool;
  private readonly watches: UpstreamWatchHub;
  private readonly keepAlives: LeaseKeepAliveMux;
  /** From the last response header seen (the cluster's; the member that answered last). */
  clusterId = 0n;
  memberId = 0n;
  /** The gateway's own token (--user), once authenticated; dropped when etcd calls it invalid. */
  private gatewayToken: Promise<string> | undefined;
  private currentGatewayToken: string | undefined;

  constructor(private readonly cfg: UpstreamConfig) {
    this.pool = new EndpointPool(cfg.endpoints, cfg.tls, cfg.maxRequestBytes + 512 * 1024, cfg.probeIntervalMs ?? 1000);
    this.pool.startProbing();
    this.watches = new UpstreamWatchHub(this.pool, cfg.watchBacklogBytesMax, async (token) => {
      const r = await this.range(pb.RangeRequest.fromPartial({ key: Buffer.from([0]), countOnly: true, limit: 1n }), { token });
      return r.header!.revision;
    });
    this.keepAlives = new LeaseKeepAliveMux(this.pool, cfg.timeoutMs);
  }

  /** The gateway's token for a request without one of its own (undefined without --user). */
  private async tokenFor(ctx: CallContext | undefined): Promise<CallContext | undefined> {
    if (ctx?.token !== undefined || this.cfg.user === undefined) return ctx;
    const user = this.cfg.user;
    this.gatewayToken ??= this.call<pb.AuthenticateRequest, pb.AuthenticateResponse>('read', pb.AuthService.authenticate, pb.AuthenticateRequest.fromPartial(user), undefined, false)
      .then((r) => (this.currentGatewayToken = r.token));
    const p = this.gatewayToken;
    p.catch(() => { if (this.gatewayToken === p) this.gatewayToken = undefined; });
    return { token: await p };
  }

  /** The gateway's token as last known, for streams (watches) opened without one. */
  streamToken(clientToken: string | undefined): string | undefined {
    return clientToken ?? (this.cfg.user !== undefined ? this.currentGatewayToken : undefined);
  }

  /** One unary call within the request budget, failing over between endpoints as `kind` allows. */
  private async call<Q, R extends { header?: pb.ResponseHeader | undefined }>(kind: Kind, send: Send<Q, R>, req: Q, clientCtx?: CallContext, asGateway = true): Promise<R> {
    const deadline = Date.now() + this.cfg.timeoutMs;
    const tried = new Set<Endpoint>();
    // The server's own calls (the v2 layer, which has checked its caller itself) run as the
    // gateway's --user login, auth RPCs included.
    const gatewayCall = asGateway || clientCtx?.internal === true;
    // (No await at all in the common case: no --user, or the caller brought its own token.)
    let ctx = gatewayCall && clientCtx?.token === undefined && this.cfg.user !== undefined ? await this.tokenFor(clientCtx) : clientCtx;
    let reauthenticated = false;
    for (;;) {
      const ep = this.pool.pick(tried);
      try {
        const resp = await new Promise<R>((resolve, reject) => {
          const cb = (err: UnaryError | null, r?: R): void => (err !== null ? reject(err) : resolve(r!));
          if (typeof send === 'function') send(ep, req, ctx?.token, deadline, cb);
          else ep.unary.call(send, req, ctx?.token, deadline, cb);
        });
        this.pool.markUp(ep);
        if (resp.header !== undefined) {
          this.clusterId = resp.header.clusterId;
          this.memberId = resp.header.memberId;
        }
        return resp;
      } catch (e) {
        // The gateway's own token expired or was revoked: etcd checks it before executing
        // anything, so authenticating again and resending is safe, even for a write.
        if (gatewayCall && clientCtx?.token === undefined && ctx?.token !== undefined && !reauthenticated &&
            (e as grpc.ServiceError).details === 'etcdserver: invalid auth token') {
          reauthenticated = true;
          if (this.currentGatewayToken === ctx.token) this.gatewayToken = undefined;
          ctx = await this.tokenFor(clientCtx);
          continue;
        }
        if (!isEndpointFailure(e)) throw toBackendError(e);
        this.pool.markDown(ep, (e as grpc.ServiceError).details);
        const retry = kind === 'read' || neverExecuted(e);
        if (!retry || Date.now() + RETRY_PAUSE_MS >= deadline) throw toBackendError(e);
        tried.add(ep);
        // Every endpoint failed once: wait (an election takes about a second) and go round again.
        if (tried.size >= this.pool.endpoints.length) {
          tried.clear();
          await sleep(RETRY_PAUSE_MS);
        }
      }
    }
  }

  range(req: pb.RangeRequest, ctx?: CallContext): Promise<pb.RangeResponse> {
    return this.call('read', (ep, q, token, deadline, cb) => ep.reads.range(q, token, deadline, cb), req, ctx);
  }
  put(req: pb.PutRequest, ctx?: CallContext): Promise<pb.PutResponse> {
    return this.call('write', pb.KVService.put, req, ctx);
  }
  deleteRange(req: pb.DeleteRangeRequest, ctx?: CallContext): Promise<pb.DeleteRangeResponse> {
    return this.call('write', pb.KVService.deleteRange, req, ctx);
  }
  txn(req: pb.TxnRequest, ctx?: CallContext): Promise<pb.TxnResponse> {
    if (txnKind(req) === 'write') return this.call('write', pb.KVService.txn, req, ctx);
    return this.call('read', (ep, q, token, deadline, cb) => ep.reads.txn(q, token, deadline, cb), req, ctx);
  }
  compact(req: pb.CompactionRequest, ctx?: CallContext): Promise<pb.CompactionResponse> {
    return this.call('write', pb.KVService.compact, req, ctx);
  }

  watch(out: WatchOutput, ctx?: CallContext): WatchSession {
    return this.watches.session(out, this.streamToken(ctx?.token));
  }

  leaseGrant(req: pb.LeaseGrantRequest, ctx?: CallContext): Promise<pb.LeaseGrantResponse> {
    return this.call('write', pb.LeaseService.leaseGrant, req, ctx);
  }
  leaseRevoke(req: pb.LeaseRevokeRequest, ctx?: CallContext): Promise<pb.LeaseRevokeResponse> {
    return this.call('write', pb.LeaseService.leaseRevoke, req, ctx);
  }
  leaseKeepAlive(req: pb.LeaseKeepAliveRequest): Promise<pb.LeaseKeepAliveResponse> {
    return this.keepAlives.keepAlive(req.ID);
  }
  leaseTimeToLive(req: pb.LeaseTimeToLiveRequest): Promise<pb.LeaseTimeToLiveResponse> {
    return this.call('read', pb.LeaseService.leaseTimeToLive, req);
  }
  leaseLeases(req: pb.LeaseLeasesRequest): Promise<pb.LeaseLeasesResponse> {
    return this.call('read', pb.LeaseService.leaseLeases, req);
  }

  memberList(req: pb.MemberListRequest): Promise<pb.MemberListResponse> {
    return this.call('read', pb.ClusterService.memberList, req);
  }

  memberAdd(req: pb.MemberAddRequest): Promise<pb.MemberAddResponse> {
    return this.call('write', pb.ClusterService.memberAdd, req);
  }

  memberRemove(req: pb.MemberRemoveRequest): Promise<pb.MemberRemoveResponse> {
    return this.call('write', pb.ClusterService.memberRemove, req);
  }

  memberUpdate(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse> {
    return this.call('write', pb.ClusterService.memberUpdate, req);
  }

  memberPromote(req: pb.MemberPromoteRequest): Promise<pb.MemberPromoteResponse> {
    return this.call('write', pb.ClusterService.memberPromote, req);
  }

  status(req: pb.StatusRequest): Promise<pb.StatusResponse> {
    return this.call('read', pb.MaintenanceService.status, req);
  }
  alarm(req: pb.AlarmRequest): Promise<pb.AlarmResponse> {
    const kind: Kind = req.action === pb.AlarmRequest_AlarmAction.GET ? 'read' : 'write';
    return this.call(kind, pb.MaintenanceService.alarm, req);
  }
  defragment(req: pb.DefragmentRequest): Promise<pb.DefragmentResponse> {
    return this.call('write', pb.MaintenanceService.defragment, req);
  }
  hash(req: pb.HashRequest): Promise<pb.HashResponse> {
    return this.call('read', pb.MaintenanceService.hash, req);
  }
  hashKV(req: pb.HashKVRequest): Promise<pb.HashKVResponse> {
    return this.call('read', pb.MaintenanceService.hashKv, req);
  }
  moveLeader(req: pb.MoveLeaderRequest): Promise<pb.MoveLeaderResponse> {
    return this.call('write', pb.MaintenanceService.moveLeader, req);
  }

  async *snapshot(req: pb.SnapshotRequest): AsyncIterable<pb.SnapshotResponse> {
    // A snapshot is long: no deadline; it streams from one member and is not resumed elsewhere.
    const call = this.pool.pick().maintenance.snapshot(req, metadataOf(undefined));
    try {
      for await (const chunk of call) yield chunk as pb.SnapshotResponse;
    } catch (e) {
      throw toBackendError(e);
    } finally {
      call.cancel();
    }
  }

  /** Upstream keep-alive messages sent so far (concurrent keep-alives of one lease share one). */
  get keepAliveMessagesSent(): number {
    return this.keepAlives.sent;
  }

  /** Reads answered out of a Txn shared with other reads so far (batch.ts). */
  get readsCoalesced(): number {
    return this.pool.endpoints.reduce((n, ep) => n + ep.reads.coalesced, 0);
  }

  /** Upstream Watch streams open now. */
  get upstreamWatchStreams(): number {
    return this.watches.upstreamStreams;
  }

  /** Upstream watchers open now (local watchers with the same parameters share one). */
  get upstreamWatchers(): number {
    return this.watches.upstreamWatchers;
  }

  // --- Auth: passed through to the cluster with the caller's token (never the gateway's own login:
  // an admin change must be the caller's). Management writes are not retried once sent. ---

  authEnable(req: pb.AuthEnableRequest, ctx?: CallContext): Promise<pb.AuthEnableResponse> {
    return this.call('write', pb.AuthService.authEnable, req, ctx, false);
  }
  authDisable(req: pb.AuthDisableRequest, ctx?: CallContext): Promise<pb.AuthDisableResponse> {
    return this.call('write', pb.AuthService.authDisable, req, ctx, false);
  }
  userAdd(req: pb.AuthUserAddRequest, ctx?: CallContext): Promise<pb.AuthUserAddResponse> {
    return this.call('write', pb.AuthService.userAdd, req, ctx, false);
  }
  userGet(req: pb.AuthUserGetRequest, ctx?: CallContext): Promise<pb.AuthUserGetResponse> {
    return this.call('read', pb.AuthService.userGet, req, ctx, false);
  }
  userList(req: pb.AuthUserListRequest, ctx?: CallContext): Promise<pb.AuthUserListResponse> {
    return this.call('read', pb.AuthService.userList, req, ctx, false);
  }
  userDelete(req: pb.AuthUserDeleteRequest, ctx?: CallContext): Promise<pb.AuthUserDeleteResponse> {
    return this.call('write', pb.AuthService.userDelete, req, ctx, false);
  }
  userChangePassword(req: pb.AuthUserChangePasswordRequest, ctx?: CallContext): Promise<pb.AuthUserChangePasswordResponse> {
    return this.call('write', pb.AuthService.userChangePassword, req, ctx, false);
  }
  userGrantRole(req: pb.AuthUserGrantRoleRequest, ctx?: CallContext): Promise<pb.AuthUserGrantRoleResponse> {
    return this.call('write', pb.AuthService.userGrantRole, req, ctx, false);
  }
  userRevokeRole(req: pb.AuthUserRevokeRoleRequest, ctx?: CallContext): Promise<pb.AuthUserRevokeRoleResponse> {
    return this.call('write', pb.AuthService.userRevokeRole, req, ctx, false);
  }
  roleAdd(req: pb.AuthRoleAddRequest, ctx?: CallContext): Promise<pb.AuthRoleAddResponse> {
    return this.call('write', pb.AuthService.roleAdd, req, ctx, false);
  }
  roleGet(req: pb.AuthRoleGetRequest, ctx?: CallContext): Promise<pb.AuthRoleGetResponse> {
    return this.call('read', pb.AuthService.roleGet, req, ctx, false);
  }
  roleList(req: pb.AuthRoleListRequest, ctx?: CallContext): Promise<pb.AuthRoleListResponse> {
    return this.call('read', pb.AuthService.roleList, req, ctx, false);
  }
  roleDelete(req: pb.AuthRoleDeleteRequest, ctx?: CallContext): Promise<pb.AuthRoleDeleteResponse> {
    return this.call('write', pb.AuthService.roleDelete, req, ctx, false);
  }
  roleGrantPermission(req: pb.AuthRoleGrantPermissionRequest, ctx?: CallContext): Promise<pb.AuthRoleGrantPermissionResponse> {
    return this.call('write', pb.AuthService.roleGrantPermission, req, ctx, false);
  }
  roleRevokePermission(req: pb.AuthRoleRevokePermissionRequest, ctx?: CallContext): Promise<pb.AuthRoleRevokePermissionResponse> {
    return this.call('write', pb.AuthService.roleRevokePermission, req, ctx, false);
  }
  authenticate(req: pb.AuthenticateRequest): Promise<pb.AuthenticateResponse> {
    return this.call('read', pb.AuthService.authenticate, req, undefined, false);
  }

  /** The cluster as health checks see it: a healthy endpoint stands for a known leader (the probe asks for one). */
  healthFacts(): HealthFacts {
    return { hasLeader: this.pool.anyHealthy(), isLearner: false, alarms: [], storageFailure: undefined };
  }

  async close(): Promise<void> {
    this.watches.close();
    this.keepAlives.close();
    this.pool.close();
  }
}
