// The typed error catalog of the backend contract. Cores raise EtcdError with one of these codes;
// each edge (gRPC, v3 gateway, v2) maps them through one total table of its own.

export const errorCodes = [
  'emptyKey', 'keyNotFound', 'valueProvided', 'leaseProvided', 'tooManyOps', 'duplicateKey',
  'compacted', 'futureRev', 'noSpace', 'leaseNotFound', 'leaseExist', 'leaseTTLTooLarge',
  'requestTooLarge', 'watchCanceled', 'memberNotFound', 'memberExist', 'peerURLExist',
  'invalidPeerURLs', 'notLearner', 'learnerNotReady', 'tooManyLearners', 'authNotEnabled',
  'badLeaderTransferee', 'notLeader', 'noLeader', 'stopped', 'timeout', 'corrupt',
  'electionNoLeader', 'electionNotLeader', 'electionNoLeaderField', 'invalidAuthToken', 'failed',
  'rootUserNotExist', 'rootRoleNotExist', 'userAlreadyExist', 'userEmpty', 'userNotFound',
  'roleAlreadyExist', 'roleNotFound', 'roleEmpty', 'authFailed', 'permissionDenied', 'roleNotGranted',
  'permissionNotGranted', 'invalidAuthMgmt', 'authOldRevision', 'noPasswordUser', 'unhealthy',
  'notEnoughStartedMembers', 'notSupportedForLearner',
  // An error etcd does not map to a gRPC status: the client sees UNKNOWN and the detail text.
  'unknown',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class EtcdError extends Error {
  override readonly name = 'EtcdError';
  constructor(readonly code: ErrorCode, detail?: string) {
    super(detail ?? code);
  }
}

/**
 * A gRPC status that has no code in the catalog, carried to the client unchanged: what an
 * upstream etcd answered (gateway mode) or why it could not be reached (UNAVAILABLE, DEADLINE_EXCEEDED).
 */
export class StatusError extends Error {
  override readonly name = 'StatusError';
  constructor(readonly grpcCode: number, message: string) {
    super(message);
  }
}
