// The v2 keys API as v3 operations: see keys.ts for the key schema, write.ts for the txns.
export { V2Error, isV2Error, v2ErrorCodes, type V2ErrorCode } from './errors.js';
export { DEFAULT_V2_PREFIX, KeySchema } from './keys.js';
export type { V2Action, V2Event, V2Header, V2Node, V2Result } from './node.js';
export { cleanPath, isRoot, normalizeKey } from './path.js';
export { V2Store, type GetRequest } from './store.js';
export { inOrderName, planWrite, type WriteRequest } from './write.js';
export { HISTORY_WINDOW, type V2Watch, type WatchRequest } from './watch.js';
export { GUEST_ROLE, ROOT_ROLE, V2PermissionMap, type V2Access, type V2Permissions } from './auth.js';
export { V2AuthGate, type V2Caller } from './auth-gate.js';
