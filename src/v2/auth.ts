// v2 auth over v3 auth, the pure part: how etcd v2's key permission patterns map onto v3 key-range
// permissions, and what a v2 request needs. No I/O (the lookups are in auth-gate.ts).
//
// v2 permissions name v2 paths ("/foo" one key, "/foo/*" every key starting with "/foo/", "/*"
// everything). A v2 path P stands, for permissions, for the LOGICAL v3 key <prefix>P (prefix =
// --v2-prefix, default "/v2"): "/foo" is the single-key v3 permission "/v2/foo" and "/foo/*" the
// prefix range ["/v2/foo/", "/v2/foo0"). The v2 layer checks a request's path against the caller's
// merged v3 permissions on those logical keys, then reads and writes the schema's physical keys
// (keys.ts: "/v2/002/foo/a", ...) as the server itself. So a role granted with v3 etcdctl
// (`role grant-permission r read /v2/foo/ --prefix`) governs v2 access, and v2 grants show up as
// v3 permissions; what a v3 permission on the logical key does NOT give is v3 access to the
// physical keys (they have other names), as documented in the README.
import { covers, mergePermissions, type MergedPermissions } from '../core/auth/permissions.js';
import { Permission_Type as PermType, type Permission } from '../gen/authpb/auth.js';
import { prefixEnd } from '../util/bytes.js';

export const ROOT_ROLE = 'root';
/** The role whose permissions unauthenticated v2 requests get (etcd v2's guest). */
export const GUEST_ROLE = 'guest';

/** The permission set that decides a request: every key (root), a merged set, or none at all. */
export type V2Permissions = 'all' | MergedPermissions | undefined;

/** What a v2 keys request needs, as etcd 3.4's hasKeyPrefixAccess asks it. */
export interface V2Access {
  /** The request path as etcd sees it: the URL path after /v2/keys ("" for /v2/keys itself). */
  readonly key: string;
  /** Any method but GET and HEAD. */
  readonly write: boolean;
  /** recursive=true: the whole subtree (a prefix permission covering it) is needed. */
  readonly recursive: boolean;
}

export class V2PermissionMap {
  private readonly base: string;
  constructor(prefix: string) {
    this.base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  }

  /** The v3 key range a v2 pattern grants: "/foo/*" a prefix range, "/foo" one key. */
  rangeOf(pattern: string): { key: Buffer; rangeEnd: Buffer } {
    if (pattern.endsWith('*')) {
      const key = Buffer.from(this.base + pattern.slice(0, -1));
      return { key, rangeEnd: prefixEnd(key) };
    }
    return { key: Buffer.from(this.base + pattern), rangeEnd: Buffer.alloc(0) };
  }

  /** The v2 pattern of a v3 permission, undefined when it is not one a v2 pattern can name. */
  patternOf(p: Permission): string | undefined {
    const key = Buffer.from(p.key);
    const head = Buffer.from(this.base);
    if (key.length < head.length || !key.subarray(0, head.length).equals(head)) return undefined;
    const rest = key.subarray(head.length).toString();
    if (p.rangeEnd.length === 0) return rest;
    return prefixEnd(key).equals(Buffer.from(p.rangeEnd)) ? `${rest}*` : undefined;
  }

  /** A role's v3 permissions as v2's {"read":[...],"write":[...]} (unnameable ones left out). */
  kvOf(perms: readonly Permission[]): { read: string[]; write: string[] } {
    const read: string[] = [];
    const write: string[] = [];
    for (const p of perms) {
      const pattern = this.patternOf(p);
      if (pattern === undefined) continue;
      if (p.permType === PermType.READ || p.permType === PermType.READWRITE) read.push(pattern);
      if (p.permType === PermType.WRITE || p.permType === PermType.READWRITE) write.push(pattern);
    }
    return { read, write };
  }

  /**
   * Whether `perms` allow the request: a single-key check of the logical key, or (recursive) of
   * the whole range under it. etcd answers "" (GET /v2/keys) with a refusal for every role but root.
   */
  allows(perms: V2Permissions, a: V2Access): boolean {
    if (perms === 'all') return true;
    if (perms === undefined || a.key === '') return false;
    const key = Buffer.from(this.base + a.key);
    const rangeEnd = a.recursive ? prefixEnd(key) : Buffer.alloc(0);
    return covers(a.write ? perms.write : perms.read, key, rangeEnd);
  }
}

/** Merges the permissions of a user's roles (root: everything). */
export function permissionsOf(roles: readonly string[], permsOfRole: (role: string) => readonly Permission[]): V2Permissions {
  if (roles.includes(ROOT_ROLE)) return 'all';
  return mergePermissions(roles.flatMap((r) => permsOfRole(r)));
}

/** `Authorization: Basic base64(user:password)` as Go's Request.BasicAuth reads it. */
export function parseBasicAuth(header: string): { user: string; password: string } | undefined {
  const PREFIX = 'basic ';
  if (header.length < PREFIX.length || header.slice(0, PREFIX.length).toLowerCase() !== PREFIX) return undefined;
  const b64 = header.slice(PREFIX.length);
  // Go's StdEncoding is strict: only the standard alphabet with padding.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  const s = Buffer.from(b64, 'base64').toString();
  const colon = s.indexOf(':');
  if (colon < 0) return undefined;
  return { user: s.slice(0, colon), password: s.slice(colon + 1) };
}
