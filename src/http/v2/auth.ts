// etcd 3.4's v2 auth API (/v2/auth/enable, /v2/auth/users, /v2/auth/roles) over v3 auth: users
// and roles ARE the v3 users and roles (one store, replicated through raft like every auth write),
// and a v2 permission pattern is a v3 key-range permission on the logical key space of the v2
// prefix (src/v2/auth.ts). Statuses, JSON shapes and messages are etcd 3.4's (captured from it);
// where v3 auth rules differ from v2's (a role must exist to be granted, the root user keeps the
// root role while auth is on) the v3 rule wins, as the README lists.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EtcdError, INTERNAL_CALL, type V3Backend } from '../../backend/index.js';
import { goJsonString } from '../../gateway/index.js';
import { Permission_Type as PermType } from '../../gen/authpb/auth.js';
import { GUEST_ROLE, ROOT_ROLE, type V2AuthGate } from '../../v2/index.js';
import { methodNotAllowed, sendMessage } from './cluster.js';

const AUTH = '/v2/auth';
const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** An answer of the auth API: its status and a {"message"} (error) or JSON body (success). */
class AuthReply extends Error {
  constructor(readonly status: number, readonly text: string, readonly isJson = false) {
    super(text);
  }
}

const fail = (status: number, message: string): AuthReply => new AuthReply(status, message);

interface Kv {
  read: string[];
  write: string[];
}

// ---- JSON ---------------------------------------------------------------------------------------

function strings(v: readonly string[] | null | undefined): string {
  return v === null || v === undefined || v.length === 0 ? 'null' : `[${v.map(goJsonString).join(',')}]`;
}

function roleJson(role: string, kv: { read?: readonly string[] | null; write?: readonly string[] | null }): string {
  return `{"role":${goJsonString(role)},"permissions":{"kv":{"read":${strings(kv.read)},"write":${strings(kv.write)}}}}`;
}

function isStringList(v: unknown): v is string[] | null | undefined {
  return v === undefined || v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
}

function parseObject(body: unknown): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(typeof body === 'string' ? body : '');
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw fail(400, 'Invalid JSON in request body.');
}

interface UserIn {
  user: string;
  password: string;
  roles: string[];
  grant: string[];
  revoke: string[];
}

function parseUser(body: unknown): UserIn {
  const o = parseObject(body);
  const { user, password, roles, grant, revoke } = o;
  const ok = (user === undefined || typeof user === 'string') && (password === undefined || typeof password === 'string') &&
    isStringList(roles) && isStringList(grant) && isStringList(revoke);
  if (!ok) throw fail(400, 'Invalid JSON in request body.');
  return { user: user ?? '', password: password ?? '', roles: roles ?? [], grant: grant ?? [], revoke: revoke ?? [] };
}

function parseKv(v: unknown): Kv {
  if (v === undefined || v === null) return { read: [], write: [] };
  if (typeof v !== 'object' || Array.isArray(v)) throw fail(400, 'Invalid JSON in request body.');
  const kv = (v as Record<string, unknown>).kv;
  if (kv === undefined || kv === null) return { read: [], write: [] };
  if (typeof kv !== 'object' || Array.isArray(kv)) throw fail(400, 'Invalid JSON in request body.');
  const { read, write } = kv as Record<string, unknown>;
  if (!isStringList(read) || !isStringList(write)) throw fail(400, 'Invalid JSON in request body.');
  return { read: read ?? [], write: write ?? [] };
}

interface RoleIn {
  role: string;
  permissions: Kv;
  grant: Kv;
  revoke: Kv;
}

function parseRole(body: unknown): RoleIn {
  const o = parseObject(body);
  if (o.role !== undefined && typeof o.role !== 'string') throw fail(400, 'Invalid JSON in request body.');
  return { role: o.role ?? '', permissions: parseKv(o.permissions), grant: parseKv(o.grant), revoke: parseKv(o.revoke) };
}

const isEmpty = (kv: Kv): boolean => kv.read.length === 0 && kv.write.length === 0;

// ---- v3 lookups and writes --------------------------------------------------------------------

class AuthApi {
  constructor(private readonly backend: V3Backend, private readonly gate: V2AuthGate) {}

  private async orUndefined<T>(p: Promise<T>, notFound: 'userNotFound' | 'roleNotFound'): Promise<T | undefined> {
    try {
      return await p;
    } catch (e) {
      if (e instanceof EtcdError && e.code === notFound) return undefined;
      throw e;
    }
  }

  userRoles(name: string): Promise<string[] | undefined> {
    return this.orUndefined(this.backend.userGet({ name }, INTERNAL_CALL).then((r) => r.roles), 'userNotFound');
  }

  /** A role's v2 permissions (root: everything, as etcd v2 shows it); undefined when it does not exist. */
  async roleKv(role: string): Promise<Kv | undefined> {
    if (role === ROOT_ROLE) return { read: ['/*'], write: ['/*'] };
    const r = await this.orUndefined(this.backend.roleGet({ role }, INTERNAL_CALL), 'roleNotFound');
    return r === undefined ? undefined : this.gate.map.kvOf(r.perm);
  }

  async roleNames(): Promise<string[]> {
    const names = new Set((await this.backend.roleList({}, INTERNAL_CALL)).roles);
    names.add(ROOT_ROLE);
    return [...names].sort();
  }

  /** {"user":...,"roles":[role objects]} (roles omitted when none exist), as GET answers it. */
  async userWithRoles(name: string, roles: readonly string[]): Promise<string> {
    const parts: string[] = [];
    for (const r of roles) {
      const kv = await this.roleKv(r);
      if (kv !== undefined) parts.push(roleJson(r, kv));
    }
    return `{"user":${goJsonString(name)}${parts.length === 0 ? '' : `,"roles":[${parts.join(',')}]`}}`;
  }

  /** Grants and revokes the v3 permissions that turn `from` into `to` (patterns per access kind). */
  async setKv(role: string, from: Kv, to: Kv): Promise<void> {
    const typeOf = (kv: Kv, p: string): PermType | undefined => {
      const r = kv.read.includes(p);
      const w = kv.write.includes(p);
      return r && w ? PermType.READWRITE : r ? PermType.READ : w ? PermType.WRITE : undefined;
    };
    const patterns = new Set([...from.read, ...from.write, ...to.read, ...to.write]);
    for (const p of patterns) {
      const before = typeOf(from, p);
      const after = typeOf(to, p);
      if (before === after) continue;
      const { key, rangeEnd } = this.gate.map.rangeOf(p);
      if (after === undefined) await this.backend.roleRevokePermission({ role, key, rangeEnd }, INTERNAL_CALL);
      else await this.backend.roleGrantPermission({ name: role, perm: { permType: after, key, rangeEnd } }, INTERNAL_CALL);
    }
  }
}

/** v3 refusals the v2 API can meet, in its words. */
function mapError(e: unknown): AuthReply {
  if (e instanceof AuthReply) return e;
  if (e instanceof EtcdError) {
    switch (e.code) {
      case 'roleNotFound': return fail(404, 'auth: Role does not exist.');
      case 'userNotFound': return fail(404, 'auth: User does not exist.');
      case 'invalidAuthMgmt': return fail(403, 'auth: Cannot remove the root user or its root role while auth is enabled.');
      case 'rootUserNotExist': return fail(409, 'auth: No root user available, please create one');
      default: return fail(500, `auth: ${e.message}`);
    }
  }
  return fail(500, 'Internal Server Error');
}

// ---- handlers -----------------------------------------------------------------------------------

async function enable(api: AuthApi, backend: V3Backend, gate: V2AuthGate, method: string): Promise<AuthReply> {
  const st = await gate.status();
  if (method === 'GET') return new AuthReply(200, `{"enabled":${st.enabled}}\n`, true);
  if (method === 'DELETE') {
    if (!st.enabled) throw fail(409, 'auth: already disabled');
    await backend.authDisable({}, INTERNAL_CALL);
    return new AuthReply(200, '', true);
  }
  if (st.enabled) throw fail(409, 'auth: already enabled');
  const rootRoles = await api.userRoles('root');
  if (rootRoles === undefined) throw fail(409, 'auth: No root user available, please create one');
  if (!rootRoles.includes(ROOT_ROLE)) await backend.userGrantRole({ user: 'root', role: ROOT_ROLE }, INTERNAL_CALL);
  // etcd v2 creates a guest role with full access when there is none: until it is revoked or
  // deleted, requests without credentials keep working.
  if ((await api.roleKv(GUEST_ROLE)) === undefined) {
    await backend.roleAdd({ name: GUEST_ROLE }, INTERNAL_CALL);
    await api.setKv(GUEST_ROLE, { read: [], write: [] }, { read: ['/*'], write: ['/*'] });
  }
  await backend.authEnable({}, INTERNAL_CALL);
  return new AuthReply(200, '', true);
}

async function listUsers(api: AuthApi, backend: V3Backend): Promise<AuthReply> {
  const names = (await backend.userList({}, INTERNAL_CALL)).users;
  const users: string[] = [];
  for (const n of names) {
    const roles = await api.userRoles(n);
    if (roles !== undefined) users.push(await api.userWithRoles(n, roles));
  }
  return new AuthReply(200, `{"users":${users.length === 0 ? 'null' : `[${users.join(',')}]`}}\n`, true);
}

async function forUser(api: AuthApi, backend: V3Backend, gate: V2AuthGate, method: string, name: string, body: unknown): Promise<AuthReply> {
  const current = await api.userRoles(name);
  if (method === 'GET') {
    if (current === undefined) throw fail(404, `auth: User ${name} does not exist.`);
    return new AuthReply(200, `${await api.userWithRoles(name, current)}\n`, true);
  }
  if (method === 'DELETE') {
    if (current === undefined) throw fail(404, `auth: User ${name} does not exist`);
    if (name === 'root' && (await gate.status()).enabled) throw fail(403, 'auth: Cannot delete root user while auth is enabled.');
    await backend.userDelete({ name }, INTERNAL_CALL);
    return new AuthReply(200, '', true);
  }
  const u = parseUser(body);
  if (u.user !== name) throw fail(400, 'User JSON name does not match the name in the URL');
  const out = (roles: readonly string[] | null): string => `{"user":${goJsonString(name)},"roles":${roles === null ? 'null' : `[${roles.map(goJsonString).join(',')}]`}}\n`;
  if (u.grant.length === 0 && u.revoke.length === 0) {
    if (current === undefined || u.roles.length > 0) {
      // create (with roles: etcd's CreateUser, answered 200; without: CreateOrUpdateUser, 201)
      if (current !== undefined) throw fail(409, `auth: User ${name} already exists.`);
      if (u.password === '') throw fail(400, `auth: Cannot create user ${name} with an empty password`);
      for (const r of u.roles) if (r !== ROOT_ROLE && (await api.roleKv(r)) === undefined) throw fail(404, `auth: Role ${r} does not exist.`);
      await backend.userAdd({ name, password: u.password, options: { noPassword: false } }, INTERNAL_CALL);
      // etcd v2's root user always holds the root role.
      const roles = name === 'root' ? [...new Set([...u.roles, ROOT_ROLE])].sort() : [...u.roles].sort();
      for (const r of roles) await backend.userGrantRole({ user: name, role: r }, INTERNAL_CALL);
      return u.roles.length > 0 ? new AuthReply(200, out(roles), true) : new AuthReply(201, out(roles.length === 0 ? null : roles), true);
    }
    if (u.password === '') throw fail(400, 'auth: User not updated. Use grant/revoke/password to update the user.');
    await backend.userChangePassword({ name, password: u.password }, INTERNAL_CALL);
    return new AuthReply(200, out(current), true);
  }
  if (u.roles.length > 0) throw fail(400, 'User JSON contains both roles and grant/revoke');
  if (current === undefined) throw fail(404, `auth: User ${name} does not exist.`);
  // Every refusal before the first write, so a refused update changes nothing.
  for (const r of u.grant) {
    if (current.includes(r)) throw fail(409, `auth: Granting duplicate role ${r} for user ${name}`);
    if (r !== ROOT_ROLE && (await api.roleKv(r)) === undefined) throw fail(404, `auth: Role ${r} does not exist.`);
  }
  for (const r of u.revoke) if (!current.includes(r)) throw fail(409, `auth: Revoking ungranted role ${r} for user ${name}`);
  if (u.password !== '') await backend.userChangePassword({ name, password: u.password }, INTERNAL_CALL);
  for (const r of u.grant) await backend.userGrantRole({ user: name, role: r }, INTERNAL_CALL);
  for (const r of u.revoke) await backend.userRevokeRole({ name, role: r }, INTERNAL_CALL);
  return new AuthReply(200, out((await api.userRoles(name)) ?? []), true);
}

async function listRoles(api: AuthApi): Promise<AuthReply> {
  const roles: string[] = [];
  for (const r of await api.roleNames()) {
    const kv = await api.roleKv(r);
    if (kv !== undefined) roles.push(roleJson(r, kv));
  }
  return new AuthReply(200, `{"roles":[${roles.join(',')}]}\n`, true);
}

async function forRole(api: AuthApi, backend: V3Backend, method: string, role: string, body: unknown): Promise<AuthReply> {
  if (method === 'GET') {
    const kv = await api.roleKv(role);
    if (kv === undefined) throw fail(404, `auth: Role ${role} does not exist.`);
    return new AuthReply(200, `${roleJson(role, kv)}\n`, true);
  }
  const isRootRole = fail(403, `auth: Cannot modify role ${role}: is root role.`);
  if (method === 'DELETE') {
    if (role === ROOT_ROLE) throw isRootRole;
    if ((await api.roleKv(role)) === undefined) throw fail(404, `auth: Role ${role} doesn't exist.`);
    await backend.roleDelete({ role }, INTERNAL_CALL);
    return new AuthReply(200, '', true);
  }
  const r = parseRole(body);
  if (r.role !== role) throw fail(400, 'Role JSON name does not match the name in the URL');
  if (isEmpty(r.grant) && isEmpty(r.revoke)) {
    if (role === ROOT_ROLE) throw isRootRole;
    if ((await api.roleKv(role)) !== undefined) throw fail(409, `auth: Role ${role} already exists.`);
    await backend.roleAdd({ name: role }, INTERNAL_CALL);
    await api.setKv(role, { read: [], write: [] }, r.permissions);
    // etcd answers with the role as sent
    return new AuthReply(201, `${roleJson(role, r.permissions)}\n`, true);
  }
  if (!isEmpty(r.permissions)) throw fail(400, 'Role JSON contains both permissions and grant/revoke');
  if (role === ROOT_ROLE) throw isRootRole;
  const from = await api.roleKv(role);
  if (from === undefined) throw fail(404, `auth: Role ${role} does not exist.`);
  const apply = (list: readonly string[], grant: readonly string[], revoke: readonly string[]): string[] =>
    [...list, ...grant.filter((p) => !list.includes(p))].filter((p) => !revoke.includes(p));
  const to = { read: apply(from.read, r.grant.read, r.revoke.read), write: apply(from.write, r.grant.write, r.revoke.write) };
  const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((p) => b.includes(p));
  if (same(from.read, to.read) && same(from.write, to.write)) throw fail(400, 'auth: Role not updated. Use grant/revoke to update the role.');
  await api.setKv(role, from, to);
  return new AuthReply(200, `${roleJson(role, (await api.roleKv(role)) ?? to)}\n`, true);
}

// ---- routes -------------------------------------------------------------------------------------

export function v2AuthRoutes(app: FastifyInstance, backend: V3Backend, gate: V2AuthGate, clusterId: () => Promise<bigint>): void {
  const api = new AuthApi(backend, gate);
  void app.register(async (scope) => {
    // Bodies are JSON whatever their Content-Type (etcd decodes the body without looking at it).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scope.setErrorHandler(async (_err, _req, reply) => sendMessage(reply, 500, 'Internal Server Error'));

    /** allowMethod, then (unless open) the root check, then the cluster ID and the handler. */
    const route = (url: string, allow: readonly string[], open: (method: string) => boolean,
      handler: (req: FastifyRequest) => Promise<AuthReply>): void => {
      scope.route({
        method: [...ALL_METHODS], url, exposeHeadRoute: false,
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          if (!allow.includes(req.method)) return methodNotAllowed(reply, allow.join(','));
          if (!open(req.method) && !(await gate.allowsRoot(req.headers.authorization))) return sendMessage(reply, 401, 'Insufficient credentials');
          void reply.header('x-etcd-cluster-id', (await clusterId()).toString(16));
          let r: AuthReply;
          try {
            r = await handler(req);
          } catch (e) {
            r = mapError(e);
          }
          if (!r.isJson) return sendMessage(reply, r.status, r.text);
          await reply.code(r.status).header('content-type', 'application/json').send(Buffer.from(r.text));
        },
      });
    };
    const tail = (req: FastifyRequest, base: string): string => {
      const path = (req.raw.url ?? '').split('?')[0]!;
      try {
        return decodeURIComponent(path.slice(base.length + 1));
      } catch {
        return path.slice(base.length + 1);
      }
    };

    route(`${AUTH}/enable`, ['GET', 'PUT', 'DELETE'], (m) => m === 'GET', (req) => enable(api, backend, gate, req.method));
    for (const url of [`${AUTH}/users`, `${AUTH}/users/`]) route(url, ['GET'], () => false, () => listUsers(api, backend));
    route(`${AUTH}/users/*`, ['GET', 'PUT', 'DELETE'], () => false, (req) => forUser(api, backend, gate, req.method, tail(req, `${AUTH}/users`), req.body));
    for (const url of [`${AUTH}/roles`, `${AUTH}/roles/`]) route(url, ['GET'], () => false, () => listRoles(api));
    route(`${AUTH}/roles/*`, ['GET', 'PUT', 'DELETE'], () => false, (req) => forRole(api, backend, req.method, tail(req, `${AUTH}/roles`), req.body));
  });
}
