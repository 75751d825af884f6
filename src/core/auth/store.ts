// The auth store, as etcd's auth/store.go: users (salted password hashes, roles), roles (key
// permissions), the enabled flag and the auth revision, with etcd's rules and errors. Mutations are
// called only by apply; each bumps the revision and stages the whole state (a few KiB) as one
// metadata record, so it commits atomically with the applied index and the MVCC data.
// Permission checks (what a caller may do) are here too, over the merged-permission cache.
import { EtcdError } from '../../backend/errors.js';
import { Permission_Type as PermType, type Permission } from '../../gen/authpb/auth.js';
import type { AuthRoleGrantPermissionRequest, AuthRoleRevokePermissionRequest } from '../../gen/etcdserverpb/rpc.js';
import type { MvccStorage } from '../mvcc/storage.js';
import { covers, mergePermissions, type MergedPermissions } from './permissions.js';

export const ROOT = 'root';
const META_AUTH = 'auth';

/** Who a request runs as: the token's user and the auth revision the token was checked at. */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}

/**
 * The server's own calls (CallContext.internal): allowed everything, like the root role, and
 * proposed with no user and auth revision 0 (apply checks no revision for it). Compared by identity.
 */
export const SYSTEM: AuthInfo = Object.freeze({ username: '', revision: 0 });

interface UserRecord {
  readonly name: string;
  readonly passwordHash: Buffer;
  readonly noPassword: boolean;
  /** Sorted, as etcd keeps them. */
  roles: string[];
}

interface StoredState {
  enabled: boolean;
  revision: number;
  users: { name: string; hash: string; noPassword: boolean; roles: string[] }[];
  roles: { name: string; perms: { t: number; k: string; e: string }[] }[];
}

function sortedInsert(list: string[], v: string): void {
  let i = 0;
  while (i < list.length && list[i]! < v) i++;
  list.splice(i, 0, v);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

export class AuthStore {
  private enabledFlag = false;
  private rev = 0;
  private readonly users = new Map<string, UserRecord>();
  /** Role name -> permissions sorted by key, as etcd keeps them. */
  private readonly roles = new Map<string, Permission[]>();
  /** Merged permissions per user, dropped on every change (etcd clears its cache the same way). */
  private readonly cache = new Map<string, MergedPermissions>();

  constructor(private readonly storage: Pick<MvccStorage, 'getMeta' | 'stage'>) {
    this.load();
  }

  /** (Re)reads the stored state: at start, and after a snapshot from the leader replaced it. */
  load(): void {
    this.enabledFlag = false;
    this.rev = 0;
    this.users.clear();
    this.roles.clear();
    this.cache.clear();
    const storage = this.storage;
    const b = storage.getMeta(META_AUTH);
    if (b === undefined) return;
    const s = JSON.parse(b.toString()) as StoredState;
    this.enabledFlag = s.enabled;
    this.rev = s.revision;
    for (const u of s.users) {
      this.users.set(u.name, { name: u.name, passwordHash: Buffer.from(u.hash, 'base64'), noPassword: u.noPassword, roles: u.roles });
    }
    for (const r of s.roles) {
      this.roles.set(r.name, r.perms.map((p) => ({ permType: p.t, key: Buffer.from(p.k, 'base64'), rangeEnd: Buffer.from(p.e, 'base64') })));
    }
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.rev;
  }

  // --- reads ---

  userNames(): string[] {
    return [...this.users.keys()].sort();
  }

  roleNames(): string[] {
    return [...this.roles.keys()].sort();
  }

  userRoles(name: string): string[] {
    const u = this.users.get(name);
    if (u === undefined) throw new EtcdError('userNotFound');
    return [...u.roles];
  }

  rolePermissions(name: string): Permission[] {
    const perms = this.roles.get(name);
    if (perms === undefined) throw new EtcdError('roleNotFound');
    return perms.map((p) => ({ ...p }));
  }

  /**
   * The stored hash of a user who may log in with a password, undefined for an unknown user (the
   * caller still spends a hash on it); etcd's CheckPassword minus the comparison.
   */
  passwordHashOf(name: string): Buffer | undefined {
    if (!this.enabledFlag) throw new EtcdError('authNotEnabled');
    const u = this.users.get(name);
    if (u === undefined) return undefined;
    if (u.noPassword) throw new EtcdError('noPasswordUser');
    return u.passwordHash;
  }

  // --- permission checks ---

  private hasRoot(name: string): boolean {
    return this.users.get(name)?.roles.includes(ROOT) ?? false;
  }

  /** etcd's IsAdminPermitted: what every auth management request needs while auth is on. */
  checkAdmin(info: AuthInfo | null): void {
    if (!this.enabledFlag || info === SYSTEM) return;
    if (info === null || info.username === '') throw new EtcdError('userEmpty');
    if (!this.users.has(info.username)) throw new EtcdError('userNotFound');
    if (!this.hasRoot(info.username)) throw new EtcdError('permissionDenied');
  }

  /** UserGet: yourself, or anyone with the root role. */
  checkUserGet(info: AuthInfo | null, name: string): void {
    if (info !== null && info.username === name && this.enabledFlag) return;
    this.checkAdmin(info);
  }

  /** RoleGet: a role you hold, or any role with the root role. */
  checkRoleGet(info: AuthInfo | null, role: string): void {
    if (info !== null && this.enabledFlag && (this.users.get(info.username)?.roles.includes(role) ?? false)) return;
    this.checkAdmin(info);
  }

  /** etcd's isOpPermitted: the caller may read or write [key, rangeEnd) (one key when rangeEnd is empty). */
  checkKeys(info: AuthInfo | null, kind: 'read' | 'write', key: Uint8Array, rangeEnd: Uint8Array): void {
    const user = this.checkUser(info);
    if (user === undefined) return;
    if (!covers(this.merged(user)[kind], key, rangeEnd)) throw new EtcdError('permissionDenied');
  }

  /**
   * The checks every key operation starts with; returns the user whose permissions decide, or
   * undefined when anything goes (auth off, or the root role).
   */
  checkUser(info: AuthInfo | null): string | undefined {
    if (!this.enabledFlag || info === SYSTEM) return undefined;
    if (info === null || info.revision === 0) throw new EtcdError('userEmpty');
    if (info.revision < this.rev) throw new EtcdError('authOldRevision');
    const u = this.users.get(info.username);
    if (u === undefined) throw new EtcdError('permissionDenied');
    return u.roles.includes(ROOT) ? undefined : u.name;
  }

  private merged(user: string): MergedPermissions {
    let m = this.cache.get(user);
    if (m === undefined) {
      const roles = this.users.get(user)?.roles ?? [];
      m = mergePermissions(roles.flatMap((r) => this.roles.get(r) ?? []));
      this.cache.set(user, m);
    }
    return m;
  }

  // --- mutations (apply only) ---

  enable(): void {
    if (this.enabledFlag) return;
    const root = this.users.get(ROOT);
    if (root === undefined) throw new EtcdError('rootUserNotExist');
    if (!root.roles.includes(ROOT)) throw new EtcdError('rootRoleNotExist');
    this.enabledFlag = true;
    this.commit();
  }

  disable(): void {
    if (!this.enabledFlag) return;
    this.enabledFlag = false;
    this.commit();
  }

  userAdd(name: string, passwordHash: Uint8Array, noPassword: boolean): void {
    if (name === '') throw new EtcdError('userEmpty');
    if (this.users.has(name)) throw new EtcdError('userAlreadyExist');
    this.users.set(name, { name, passwordHash: noPassword ? Buffer.alloc(0) : Buffer.from(passwordHash), noPassword, roles: [] });
    this.commit();
  }

  userDelete(name: string): void {
    if (this.enabledFlag && name === ROOT) throw new EtcdError('invalidAuthMgmt');
    if (!this.users.delete(name)) throw new EtcdError('userNotFound');
    this.commit();
  }

  userChangePassword(name: string, passwordHash: Uint8Array): void {
    const u = this.users.get(name);
    if (u === undefined) throw new EtcdError('userNotFound');
    this.users.set(name, { ...u, passwordHash: Buffer.from(passwordHash) });
    this.commit();
  }

  userGrantRole(name: string, role: string): void {
    const u = this.users.get(name);
    if (u === undefined) throw new EtcdError('userNotFound');
    // etcd lets the root role be granted before it was ever added.
    if (role !== ROOT && !this.roles.has(role)) throw new EtcdError('roleNotFound');
    if (u.roles.includes(role)) return;
    sortedInsert(u.roles, role);
    this.commit();
  }

  userRevokeRole(name: string, role: string): void {
    if (this.enabledFlag && name === ROOT && role === ROOT) throw new EtcdError('invalidAuthMgmt');
    const u = this.users.get(name);
    if (u === undefined) throw new EtcdError('userNotFound');
    const i = u.roles.indexOf(role);
    if (i < 0) throw new EtcdError('roleNotGranted');
    u.roles.splice(i, 1);
    this.commit();
  }

  roleAdd(name: string): void {
    if (name === '') throw new EtcdError('roleEmpty');
    if (this.roles.has(name)) throw new EtcdError('roleAlreadyExist');
    this.roles.set(name, []);
    this.commit();
  }

  roleDelete(name: string): void {
    if (this.enabledFlag && name === ROOT) throw new EtcdError('invalidAuthMgmt');
    if (!this.roles.delete(name)) throw new EtcdError('roleNotFound');
    // Users lose the deleted role, as in etcd.
    for (const u of this.users.values()) {
      const i = u.roles.indexOf(name);
      if (i >= 0) u.roles.splice(i, 1);
    }
    this.commit();
  }

  roleGrantPermission(r: AuthRoleGrantPermissionRequest): void {
    const perms = this.roles.get(r.name);
    if (perms === undefined) throw new EtcdError('roleNotFound');
    const perm: Permission = {
      permType: r.perm?.permType ?? PermType.READ,
      key: Buffer.from(r.perm?.key ?? []),
      rangeEnd: Buffer.from(r.perm?.rangeEnd ?? []),
    };
    const same = perms.find((p) => sameBytes(p.key, perm.key) && sameBytes(p.rangeEnd, perm.rangeEnd));
    if (same !== undefined) {
      same.permType = perm.permType;
    } else {
      let i = 0;
      while (i < perms.length && Buffer.compare(perms[i]!.key, perm.key) <= 0) i++;
      perms.splice(i, 0, perm);
    }
    this.commit();
  }

  roleRevokePermission(r: AuthRoleRevokePermissionRequest): void {
    const perms = this.roles.get(r.role);
    if (perms === undefined) throw new EtcdError('roleNotFound');
    const i = perms.findIndex((p) => sameBytes(p.key, r.key) && sameBytes(p.rangeEnd, r.rangeEnd));
    if (i < 0) throw new EtcdError('permissionNotGranted');
    perms.splice(i, 1);
    this.commit();
  }

  /** Every change: a new revision, a cold cache, and the whole state staged with the apply. */
  private commit(): void {
    this.rev++;
    this.cache.clear();
    const s: StoredState = {
      enabled: this.enabledFlag,
      revision: this.rev,
      users: [...this.users.values()].map((u) => ({ name: u.name, hash: u.passwordHash.toString('base64'), noPassword: u.noPassword, roles: u.roles })),
      roles: [...this.roles].map(([name, perms]) => ({
        name,
        perms: perms.map((p) => ({ t: p.permType, k: Buffer.from(p.key).toString('base64'), e: Buffer.from(p.rangeEnd).toString('base64') })),
      })),
    };
    this.storage.stage({ t: 'meta', name: META_AUTH, value: Buffer.from(JSON.stringify(s)) });
  }
}
