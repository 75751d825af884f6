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
