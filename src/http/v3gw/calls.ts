// Which backend call serves each unary gateway method.
import type { CallContext as BackendCallContext, V3Backend } from '../../backend/index.js';
import { putRequestSize } from '../../backend/wire-size.js';
import type { Message } from '../../gateway/index.js';
import * as pb from '../../gen/etcdserverpb/rpc.js';
import * as electionpb from '../../gen/v3electionpb/v3election.js';
import * as lockpb from '../../gen/v3lockpb/v3lock.js';
import { campaign, leader, proclaim, resign } from '../../recipes/election.js';
import { asCaller } from '../../recipes/backend.js';
import { lock, unlock } from '../../recipes/lock.js';

export interface CallContext {
  readonly backend: V3Backend;
  /** The caller's auth token (Grpc-Metadata-Token, else Authorization), as gRPC metadata carries it. */
  readonly auth: BackendCallContext;
  /** Fires when the HTTP client goes away (blocking Lock and Campaign stop waiting). */
  readonly signal: AbortSignal;
}

/** A ts-proto message namespace: the binary encoder gives the size the gRPC limit is checked on. */
interface MessageFns<T> {
  encode(message: T): { finish(): Uint8Array };
}

export interface UnaryCall {
  /** Backend errors reach the client as etcd services map them, or all as UNKNOWN (Lock, Election). */
  readonly errors: 'etcd' | 'recipe';
  encodedBytes(req: Message): number;
  invoke(req: Message, ctx: CallContext): Promise<unknown>;
}

function call<Req>(
  fns: MessageFns<Req>, fn: (req: Req, ctx: CallContext) => Promise<unknown>, errors: 'etcd' | 'recipe' = 'etcd',
  size: (req: Req) => number = (req) => fns.encode(req).finish().length,
): UnaryCall {
  // The gateway decoder builds req from the same .proto schema ts-proto generated Req from
  // (test/gateway/codec.test.ts checks both agree on every type).
  const typed = (req: Message): Req => req as unknown as Req;
  return {
    errors,
    encodedBytes: (req) => size(typed(req)),
    invoke: (req, ctx) => fn(typed(req), ctx),
  };
}

export const unaryCalls: Readonly<Record<string, UnaryCall>> = {
  'etcdserverpb.KV.Range': call(pb.RangeRequest, (r, c) => c.backend.range(r, c.auth)),
  // Puts are sized without encoding them again (a big value is what makes a request large).
  'etcdserverpb.KV.Put': call(pb.PutRequest, (r, c) => c.backend.put(r, c.auth), 'etcd', putRequestSize),
  'etcdserverpb.KV.DeleteRange': call(pb.DeleteRangeRequest, (r, c) => c.backend.deleteRange(r, c.auth)),
  'etcdserverpb.KV.Txn': call(pb.TxnRequest, (r, c) => c.backend.txn(r, c.auth)),
  'etcdserverpb.KV.Compact': call(pb.CompactionRequest, (r, c) => c.backend.compact(r, c.auth)),
  'etcdserverpb.Lease.LeaseGrant': call(pb.LeaseGrantRequest, (r, c) => c.backend.leaseGrant(r, c.auth)),
  'etcdserverpb.Lease.LeaseRevoke': call(pb.LeaseRevokeRequest, (r, c) => c.backend.leaseRevoke(r, c.auth)),
  'etcdserverpb.Lease.LeaseTimeToLive': call(pb.LeaseTimeToLiveRequest, (r, c) => c.backend.leaseTimeToLive(r)),
  'etcdserverpb.Lease.LeaseLeases': call(pb.LeaseLeasesRequest, (r, c) => c.backend.leaseLeases(r)),
  'etcdserverpb.Cluster.MemberList': call(pb.MemberListRequest, (r, c) => c.backend.memberList(r)),
  'etcdserverpb.Cluster.MemberAdd': call(pb.MemberAddRequest, (r, c) => c.backend.memberAdd(r)),
  'etcdserverpb.Cluster.MemberRemove': call(pb.MemberRemoveRequest, (r, c) => c.backend.memberRemove(r)),
  'etcdserverpb.Cluster.MemberUpdate': call(pb.MemberUpdateRequest, (r, c) => c.backend.memberUpdate(r)),
  'etcdserverpb.Cluster.MemberPromote': call(pb.MemberPromoteRequest, (r, c) => c.backend.memberPromote(r)),
  'etcdserverpb.Maintenance.Alarm': call(pb.AlarmRequest, (r, c) => c.backend.alarm(r)),
  'etcdserverpb.Maintenance.Status': call(pb.StatusRequest, (r, c) => c.backend.status(r)),
  'etcdserverpb.Maintenance.Defragment': call(pb.DefragmentRequest, (r, c) => c.backend.defragment(r, c.auth)),
  'etcdserverpb.Maintenance.Hash': call(pb.HashRequest, (r, c) => c.backend.hash(r, c.auth)),
  'etcdserverpb.Maintenance.MoveLeader': call(pb.MoveLeaderRequest, (r, c) => c.backend.moveLeader(r)),
  'etcdserverpb.Auth.AuthEnable': call(pb.AuthEnableRequest, (r, c) => c.backend.authEnable(r, c.auth)),
  'etcdserverpb.Auth.AuthDisable': call(pb.AuthDisableRequest, (r, c) => c.backend.authDisable(r, c.auth)),
  'etcdserverpb.Auth.Authenticate': call(pb.AuthenticateRequest, (r, c) => c.backend.authenticate(r)),
  'etcdserverpb.Auth.UserAdd': call(pb.AuthUserAddRequest, (r, c) => c.backend.userAdd(r, c.auth)),
  'etcdserverpb.Auth.UserGet': call(pb.AuthUserGetRequest, (r, c) => c.backend.userGet(r, c.auth)),
  'etcdserverpb.Auth.UserList': call(pb.AuthUserListRequest, (r, c) => c.backend.userList(r, c.auth)),
  'etcdserverpb.Auth.UserDelete': call(pb.AuthUserDeleteRequest, (r, c) => c.backend.userDelete(r, c.auth)),
  'etcdserverpb.Auth.UserChangePassword': call(pb.AuthUserChangePasswordRequest, (r, c) => c.backend.userChangePassword(r, c.auth)),
  'etcdserverpb.Auth.UserGrantRole': call(pb.AuthUserGrantRoleRequest, (r, c) => c.backend.userGrantRole(r, c.auth)),
  'etcdserverpb.Auth.UserRevokeRole': call(pb.AuthUserRevokeRoleRequest, (r, c) => c.backend.userRevokeRole(r, c.auth)),
  'etcdserverpb.Auth.RoleAdd': call(pb.AuthRoleAddRequest, (r, c) => c.backend.roleAdd(r, c.auth)),
  'etcdserverpb.Auth.RoleGet': call(pb.AuthRoleGetRequest, (r, c) => c.backend.roleGet(r, c.auth)),
  'etcdserverpb.Auth.RoleList': call(pb.AuthRoleListRequest, (r, c) => c.backend.roleList(r, c.auth)),
  'etcdserverpb.Auth.RoleDelete': call(pb.AuthRoleDeleteRequest, (r, c) => c.backend.roleDelete(r, c.auth)),
  'etcdserverpb.Auth.RoleGrantPermission': call(pb.AuthRoleGrantPermissionRequest, (r, c) => c.backend.roleGrantPermission(r, c.auth)),
  'etcdserverpb.Auth.RoleRevokePermission': call(pb.AuthRoleRevokePermissionRequest, (r, c) => c.backend.roleRevokePermission(r, c.auth)),
  'v3lockpb.Lock.Lock': call(lockpb.LockRequest, (r, c) => lock(asCaller(c.backend, c.auth), r, c.signal), 'recipe'),
  'v3lockpb.Lock.Unlock': call(lockpb.UnlockRequest, (r, c) => unlock(asCaller(c.backend, c.auth), r), 'recipe'),
  'v3electionpb.Election.Campaign': call(electionpb.CampaignRequest, (r, c) => campaign(asCaller(c.backend, c.auth), r, c.signal), 'recipe'),
  'v3electionpb.Election.Proclaim': call(electionpb.ProclaimRequest, (r, c) => proclaim(asCaller(c.backend, c.auth), r), 'recipe'),
  'v3electionpb.Election.Leader': call(electionpb.LeaderRequest, (r, c) => leader(asCaller(c.backend, c.auth), r), 'recipe'),
  'v3electionpb.Election.Resign': call(electionpb.ResignRequest, (r, c) => resign(asCaller(c.backend, c.auth), r), 'recipe'),
};
