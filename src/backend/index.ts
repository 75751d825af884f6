// The V3Backend contract: what every edge (gRPC, v3 JSON gateway, v2 emulation) calls, and what
// the embedded core and (later) the upstream client implement. Messages are etcd's own wire types.
import type * as pb from '../gen/etcdserverpb/rpc.js';
import type { HealthFacts } from './health.js';

export { EtcdError, type ErrorCode } from './errors.js';
export type { HealthFacts } from './health.js';

/** What a request carries besides its message: the auth token (gRPC metadata `token` or
 * `authorization`, the gateway's Authorization header). */
export interface CallContext {
  readonly token?: string | undefined;
  /** The verified client certificate's Common Name (gRPC over TLS with --client-cert-auth):
   * the caller when auth is enabled and no token is given, as etcd 3.4's AuthInfoFromTLS. */
  readonly commonName?: string | undefined;
  /**
   * The server's own call (never set from the wire): the v2 layer, which checks the v2 caller's
   * permissions on its logical keys itself (src/v2/auth.ts) and then reads and writes the v2
   * schema's physical keys as the server. The embedded core lets it pass every auth check; an
   * upstream cluster knows nothing of it (the call goes without a token).
   */
  readonly internal?: true;
}

/** The context of the server's own calls (see CallContext.internal). */
export const INTERNAL_CALL: CallContext = Object.freeze({ internal: true });

/** The auth state, for edges that enforce auth themselves (the v2 API). */
export interface AuthStatus {
  readonly enabled: boolean;
  /** Bumped by every auth change: what a cache of credentials or permissions is valid for. */
  readonly revision: number;
}

/** One watch stream (a gRPC Watch call, a gateway /v3/watch request, ...). */
export interface WatchSession {
  request(req: pb.WatchRequest): void;
  close(): void;
}

export interface WatchOutput {
  /** Sends one response; returns false when the consumer is congested (buffering). */
  send(resp: pb.WatchResponse): void;
  /** Bytes queued towards the consumer and not yet flushed. */
  backlogBytes(): number;
}

export interface V3Backend {
  range(req: pb.RangeRequest, ctx?: CallContext): Promise<pb.RangeResponse>;
  put(req: pb.PutRequest, ctx?: CallContext): Promise<pb.PutResponse>;
  deleteRange(req: pb.DeleteRangeRequest, ctx?: CallContext): Promise<pb.DeleteRangeResponse>;
  txn(req: pb.TxnRequest, ctx?: CallContext): Promise<pb.TxnResponse>;
  compact(req: pb.CompactionRequest, ctx?: CallContext): Promise<pb.CompactionResponse>;

  watch(out: WatchOutput, ctx?: CallContext): WatchSession;

  leaseGrant(req: pb.LeaseGrantRequest, ctx?: CallContext): Promise<pb.LeaseGrantResponse>;
  leaseRevoke(req: pb.LeaseRevokeRequest, ctx?: CallContext): Promise<pb.LeaseRevokeResponse>;
  leaseKeepAlive(req: pb.LeaseKeepAliveRequest): Promise<pb.LeaseKeepAliveResponse>;
  leaseTimeToLive(req: pb.LeaseTimeToLiveRequest): Promise<pb.LeaseTimeToLiveResponse>;
  leaseLeases(req: pb.LeaseLeasesRequest): Promise<pb.LeaseLeasesResponse>;

  memberList(req: pb.MemberListRequest): Promise<pb.MemberListResponse>;
  memberAdd(req: pb.MemberAddRequest): Promise<pb.MemberAddResponse>;
  memberRemove(req: pb.MemberRemoveRequest): Promise<pb.MemberRemoveResponse>;
  memberUpdate(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse>;
  memberPromote(req: pb.MemberPromoteRequest): Promise<pb.MemberPromoteResponse>;

  status(req: pb.StatusRequest): Promise<pb.StatusResponse>;
  alarm(req: pb.AlarmRequest): Promise<pb.AlarmResponse>;
  defragment(req: pb.DefragmentRequest, ctx?: CallContext): Promise<pb.DefragmentResponse>;
  hash(req: pb.HashRequest, ctx?: CallContext): Promise<pb.HashResponse>;
  hashKV(req: pb.HashKVRequest, ctx?: CallContext): Promise<pb.HashKVResponse>;
  snapshot(req: pb.SnapshotRequest, ctx?: CallContext): AsyncIterable<pb.SnapshotResponse>;
  moveLeader(req: pb.MoveLeaderRequest): Promise<pb.MoveLeaderResponse>;

  /** Leader, alarms, storage state: what every health check judges (src/backend/health.ts). */
  healthFacts(): HealthFacts;
  /**
   * This member is a learner now (embedded backends in a cluster; it changes at promotion). An
   * upstream cluster's learner refuses calls itself, so the gateway backend has none.
   */
  isLearner?(): boolean;
  /** Where the backend knows it at no cost (embedded); an upstream cluster (3.4) has no such call. */
  authStatus?(): AuthStatus;
  authEnable(req: pb.AuthEnableRequest, ctx?: CallContext): Promise<pb.AuthEnableResponse>;
  authDisable(req: pb.AuthDisableRequest, ctx?: CallContext): Promise<pb.AuthDisableResponse>;
  authenticate(req: pb.AuthenticateRequest): Promise<pb.AuthenticateResponse>;
  userAdd(req: pb.AuthUserAddRequest, ctx?: CallContext): Promise<pb.AuthUserAddResponse>;
  userGet(req: pb.AuthUserGetRequest, ctx?: CallContext): Promise<pb.AuthUserGetResponse>;
  userList(req: pb.AuthUserListRequest, ctx?: CallContext): Promise<pb.AuthUserListResponse>;
  userDelete(req: pb.AuthUserDeleteRequest, ctx?: CallContext): Promise<pb.AuthUserDeleteResponse>;
  userChangePassword(req: pb.AuthUserChangePasswordRequest, ctx?: CallContext): Promise<pb.AuthUserChangePasswordResponse>;
  userGrantRole(req: pb.AuthUserGrantRoleRequest, ctx?: CallContext): Promise<pb.AuthUserGrantRoleResponse>;
  userRevokeRole(req: pb.AuthUserRevokeRoleRequest, ctx?: CallContext): Promise<pb.AuthUserRevokeRoleResponse>;
  roleAdd(req: pb.AuthRoleAddRequest, ctx?: CallContext): Promise<pb.AuthRoleAddResponse>;
  roleGet(req: pb.AuthRoleGetRequest, ctx?: CallContext): Promise<pb.AuthRoleGetResponse>;
  roleList(req: pb.AuthRoleListRequest, ctx?: CallContext): Promise<pb.AuthRoleListResponse>;
  roleDelete(req: pb.AuthRoleDeleteRequest, ctx?: CallContext): Promise<pb.AuthRoleDeleteResponse>;
  roleGrantPermission(req: pb.AuthRoleGrantPermissionRequest, ctx?: CallContext): Promise<pb.AuthRoleGrantPermissionResponse>;
  roleRevokePermission(req: pb.AuthRoleRevokePermissionRequest, ctx?: CallContext): Promise<pb.AuthRoleRevokePermissionResponse>;
  close(): Promise<void>;
}

/**
 * The backend seen through one call context: every call carries `ctx` (what the v2 store runs
 * with: INTERNAL_CALL). Each method takes its context as its second argument, or none at all.
 */
export function withCallContext(backend: V3Backend, ctx: CallContext): V3Backend {
  // Keyed by the method itself, so the view follows a method replaced on the backend later.
  const cache = new WeakMap<object, unknown>();
  return new Proxy(backend, {
    get(target, prop, receiver): unknown {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || prop === 'constructor') return v;
      const fn = v as (a: unknown, c?: CallContext) => unknown;
      let bound = cache.get(fn);
      if (bound === undefined) {
        bound = (a: unknown): unknown => fn.call(target, a, ctx);
        cache.set(fn, bound);
      }
      return bound;
    },
  });
}
