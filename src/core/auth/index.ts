// The auth concern of the embedded core: store (users, roles, checks), permission cache, password
// hashes and token providers.
export { checkPassword, hashPassword } from './password.js';
export { covers, mergePermissions, type KeyInterval, type MergedPermissions } from './permissions.js';
export { AuthStore, ROOT, SYSTEM, type AuthInfo } from './store.js';
export { JWT_SIGN_METHODS, JwtTokens, SimpleTokens, simpleTokenPrefix, type JwtOptions, type TokenProvider } from './tokens.js';
export { checkDeleteAuth, checkLeaseRevokeAuth, checkPutAuth, checkTxnAuth, type LeaseKeys } from './requests.js';
