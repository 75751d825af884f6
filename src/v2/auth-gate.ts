// v2 auth over v3 auth, the lookups: who a v2 request runs as (HTTP basic auth checked against the
// v3 user store, or the guest role without credentials) and what that caller may do, from the v3
// users and roles through the V3Backend. The mapping itself is auth.ts.
//
// A password is checked by the backend's Authenticate (the same slow hash check as a v3 login; a
// failure does not say which part was wrong). A success is remembered, by user and a salted digest
// of the password, for as long as the auth revision does not move: every auth change (password,
// roles, users, enable) bumps it, so nothing stale survives one. Permissions are cached the same way.
// Without a revision to key on (an upstream cluster: 3.4 has no AuthStatus), nothing is cached.
import { createHash, randomBytes } from 'node:crypto';
import { EtcdError, INTERNAL_CALL, type AuthStatus, type V3Backend } from '../backend/index.js';
import type { Permission } from '../gen/authpb/auth.js';
import { GUEST_ROLE, parseBasicAuth, permissionsOf, ROOT_ROLE, V2PermissionMap, type V2Access, type V2Permissions } from './auth.js';

/** Whom a request runs as: a user name, or null for the guest (no Authorization header). */
export type V2Caller = string | null;

/** Remembered logins and permission sets, at most this many each (then forgotten all at once). */
const CACHE_MAX = 4096;

/** How long an upstream cluster's probed auth state is trusted. */
const PROBE_TTL_MS = 1000;

/** What a failed password check is, as opposed to a failure to check it (no leader, ...). */
const LOGIN_REFUSALS = new Set(['authFailed', 'userNotFound', 'noPasswordUser', 'userEmpty', 'authNotEnabled']);

export class V2AuthGate {
  readonly map: V2PermissionMap;
  private readonly salt = randomBytes(16);
  /** user + "\0" + digest -> the auth revision the password was checked at. */
  private readonly logins = new Map<string, number>();
  /** user ("" = guest) -> permissions at an auth revision. */
  private readonly perms = new Map<string, { revision: number; perms: V2Permissions }>();
  /** The last upstream probe (one round trip per PROBE_TTL_MS, not per request). */
  private probed: { atMs: number; status: Promise<AuthStatus> } | undefined;

  /**
   * `guestIsServer`: a request without credentials runs as the server's own login (gateway mode
   * with --user, which serves every token-less client as that user) instead of the guest role.
   */
  constructor(private readonly backend: V3Backend, prefix: string, private readonly guestIsServer = false) {
    this.map = new V2PermissionMap(prefix);
  }

  /** The auth state: free in the embedded core; probed upstream (UserList needs a user iff auth is on). */
  async status(): Promise<AuthStatus> {
    if (this.backend.authStatus) return this.backend.authStatus();
    const now = Date.now();
    if (this.probed === undefined || now - this.probed.atMs >= PROBE_TTL_MS) this.probed = { atMs: now, status: this.probe() };
    return this.probed.status;
  }

  private async probe(): Promise<AuthStatus> {
    try {
      await this.backend.userList({});
      return { enabled: false, revision: -1 };
    } catch (e) {
      if (e instanceof EtcdError && (e.code === 'userEmpty' || e.code === 'permissionDenied' || e.code === 'invalidAuthToken')) {
        return { enabled: true, revision: -1 };
      }
      this.probed = undefined; // a failed probe is not remembered
      throw e;
    }
  }

  /**
   * The caller of a request with auth on: null (guest) without an Authorization header, the user
   * when the basic credentials are right, undefined when they are not (malformed, unknown user,
   * wrong password: one answer for all).
   */
  async caller(authorization: string | undefined, st: AuthStatus): Promise<V2Caller | undefined> {
    if (authorization === undefined) return null;
    const cred = parseBasicAuth(authorization);
    if (cred === undefined) return undefined;
    const digest = createHash('sha256').update(this.salt).update(cred.user).update('\0').update(cred.password).digest('base64');
    const id = `${cred.user}\0${digest}`;
    if (st.revision >= 0 && this.logins.get(id) === st.revision) return cred.user;
    try {
      await this.backend.authenticate({ name: cred.user, password: cred.password });
    } catch (e) {
      if (e instanceof EtcdError && LOGIN_REFUSALS.has(e.code)) return undefined;
      throw e;
    }
    if (st.revision >= 0) {
      if (this.logins.size >= CACHE_MAX) this.logins.clear();
      this.logins.set(id, st.revision);
    }
    return cred.user;
  }

  /** The caller's permissions: its roles' (root: all); the guest role's for null (none without one). */
  async permissions(caller: V2Caller, st: AuthStatus): Promise<V2Permissions> {
    if (caller === null && this.guestIsServer) return 'all';
    const id = caller ?? '';
    const hit = this.perms.get(id);
    if (hit !== undefined && st.revision >= 0 && hit.revision === st.revision) return hit.perms;
    const roles = caller === null ? [GUEST_ROLE] : await this.rolesOf(caller);
    const found = new Map<string, readonly Permission[]>();
    for (const r of roles) {
      if (r === ROOT_ROLE) continue;
      const p = await this.rolePermissions(r);
      if (p !== undefined) found.set(r, p);
    }
    // No guest role: the guest may do nothing (etcd v2 answers every such request 401).
    const perms = caller === null && !found.has(GUEST_ROLE) ? undefined : permissionsOf(roles, (r) => found.get(r) ?? []);
    if (st.revision >= 0) {
      if (this.perms.size >= CACHE_MAX) this.perms.clear();
      this.perms.set(id, { revision: st.revision, perms });
    }
    return perms;
  }

  private async rolesOf(user: string): Promise<string[]> {
    try {
      return (await this.backend.userGet({ name: user }, INTERNAL_CALL)).roles;
    } catch (e) {
      if (e instanceof EtcdError && e.code === 'userNotFound') return [];
      throw e;
    }
  }

  private async rolePermissions(role: string): Promise<readonly Permission[] | undefined> {
    try {
      return (await this.backend.roleGet({ role }, INTERNAL_CALL)).perm;
    } catch (e) {
      if (e instanceof EtcdError && e.code === 'roleNotFound') return undefined;
      throw e;
    }
  }

  /** etcd 3.4's hasKeyPrefixAccess: auth off, or the caller's permissions allow the request. */
  async allowsKeys(authorization: string | undefined, access: V2Access): Promise<boolean> {
    const st = await this.status();
    if (!st.enabled) return true;
    const caller = await this.caller(authorization, st);
    if (caller === undefined) return false;
    return this.map.allows(await this.permissions(caller, st), access);
  }

  /** etcd 3.4's hasRootAccess: auth off, or a user with the root role. */
  async allowsRoot(authorization: string | undefined): Promise<boolean> {
    const st = await this.status();
    if (!st.enabled) return true;
    const caller = await this.caller(authorization, st);
    if (caller === undefined || caller === null) return false;
    return (await this.rolesOf(caller)).includes(ROOT_ROLE);
  }
}
