// The gRPC edge's one error table: each backend error code to etcd's gRPC status code and its
// exact message text (clients match on the text: it must be byte for byte etcd's).
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { EtcdError, StatusError, type ErrorCode } from '../backend/errors.js';

export const grpcErrors = {
  emptyKey: [status.INVALID_ARGUMENT, 'etcdserver: key is not provided'],
  keyNotFound: [status.INVALID_ARGUMENT, 'etcdserver: key not found'],
  valueProvided: [status.INVALID_ARGUMENT, 'etcdserver: value is provided'],
  leaseProvided: [status.INVALID_ARGUMENT, 'etcdserver: lease is provided'],
  tooManyOps: [status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'],
  duplicateKey: [status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'],
  compacted: [status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'],
  futureRev: [status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'],
  noSpace: [status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'],
  leaseNotFound: [status.NOT_FOUND, 'etcdserver: requested lease not found'],
  leaseExist: [status.FAILED_PRECONDITION, 'etcdserver: lease already exists'],
  leaseTTLTooLarge: [status.OUT_OF_RANGE, 'etcdserver: too large lease TTL'],
  requestTooLarge: [status.INVALID_ARGUMENT, 'etcdserver: request is too large'],
  watchCanceled: [status.CANCELLED, 'etcdserver: watch canceled'],
  memberNotFound: [status.NOT_FOUND, 'etcdserver: member not found'],
  memberExist: [status.FAILED_PRECONDITION, 'etcdserver: member ID already exist'],
  peerURLExist: [status.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'],
  invalidPeerURLs: [status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'],
  notLearner: [status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'],
  learnerNotReady: [status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member which is in sync with leader'],
  tooManyLearners: [status.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'],
  authNotEnabled: [status.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'],
  badLeaderTransferee: [status.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'],
  notLeader: [status.FAILED_PRECONDITION, 'etcdserver: not leader'],
  noLeader: [status.UNAVAILABLE, 'etcdserver: no leader'],
  stopped: [status.UNAVAILABLE, 'etcdserver: server stopped'],
  timeout: [status.UNAVAILABLE, 'etcdserver: request timed out'],
  corrupt: [status.DATA_LOSS, 'etcdserver: corrupt cluster'],
  unhealthy: [status.UNAVAILABLE, 'etcdserver: unhealthy cluster'],
  notEnoughStartedMembers: [status.FAILED_PRECONDITION, 'etcdserver: re-configuration failed due to not enough started members'],
  notSupportedForLearner: [status.UNAVAILABLE, 'etcdserver: rpc not supported for learner'],
  electionNoLeader: [status.UNKNOWN, 'election: no leader'],
  electionNotLeader: [status.UNKNOWN, 'election: not leader'],
  electionNoLeaderField: [status.UNKNOWN, '"leader" field must be provided'],
  invalidAuthToken: [status.UNAUTHENTICATED, 'etcdserver: invalid auth token'],
  failed: [status.UNAVAILABLE, 'etcdserver: storage failed'],
  rootUserNotExist: [status.FAILED_PRECONDITION, 'etcdserver: root user does not exist'],
  rootRoleNotExist: [status.FAILED_PRECONDITION, 'etcdserver: root user does not have root role'],
  userAlreadyExist: [status.FAILED_PRECONDITION, 'etcdserver: user name already exists'],
  userEmpty: [status.INVALID_ARGUMENT, 'etcdserver: user name is empty'],
  userNotFound: [status.FAILED_PRECONDITION, 'etcdserver: user name not found'],
  roleAlreadyExist: [status.FAILED_PRECONDITION, 'etcdserver: role name already exists'],
  roleNotFound: [status.FAILED_PRECONDITION, 'etcdserver: role name not found'],
  roleEmpty: [status.INVALID_ARGUMENT, 'etcdserver: role name is empty'],
  authFailed: [status.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'],
  permissionDenied: [status.PERMISSION_DENIED, 'etcdserver: permission denied'],
  roleNotGranted: [status.FAILED_PRECONDITION, 'etcdserver: role is not granted to the user'],
  permissionNotGranted: [status.FAILED_PRECONDITION, 'etcdserver: permission is not granted to the role'],
  invalidAuthMgmt: [status.INVALID_ARGUMENT, 'etcdserver: invalid auth management'],
  authOldRevision: [status.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'],
  // etcd 3.4 leaves this auth error unmapped: it reaches clients as UNKNOWN with the auth package's text.
  noPasswordUser: [status.UNKNOWN, 'auth: authentication failed, password was given for no password user'],
  unknown: [status.UNKNOWN, ''],
} as const satisfies Record<ErrorCode, readonly [status, string]>;

/** etcd's message text -> its catalog code (an upstream etcd's answers become typed errors again). */
export const errorCodeByMessage: ReadonlyMap<string, ErrorCode> = new Map(
  (Object.entries(grpcErrors) as [ErrorCode, readonly [status, string]][]).map(([code, [, message]]) => [message, code]),
);

export type Logger = { error(obj: object, msg: string): void };

/** The status a client sees for any error thrown by a handler. */
export function toServiceError(e: unknown, log: Logger): Partial<ServiceError> {
  if (e instanceof EtcdError) {
    const [code, message] = grpcErrors[e.code];
    // 'failed' and 'unknown' carry their own text; every other code uses etcd's fixed text.
    const details = (e.code === 'failed' || e.code === 'unknown') && e.message !== e.code ? e.message : message;
    return { code, details, metadata: new Metadata() };
  }
  if (e instanceof StatusError) return { code: e.grpcCode, details: e.message, metadata: new Metadata() };
  log.error({ err: e }, 'unexpected error in a gRPC handler');
  return { code: status.INTERNAL, details: 'etcdserver: internal error', metadata: new Metadata() };
}

/** Lock and Election answer every failure as UNKNOWN with the plain message, as etcd does. */
export function toUnknownError(e: unknown, log: Logger): Partial<ServiceError> {
  const s = toServiceError(e, log);
  return s.code === status.INTERNAL ? s : { ...s, code: status.UNKNOWN };
}
