// Auth enforced on every protocol of the v3 API, through real clients against our server process:
// a user with READ on the prefix app/ can read it, cannot write it and cannot read outside it, over
// gRPC (generated grpc-js clients, metadata `token`; the npm etcd3 client), over the JSON gateway
// (Authorization header) and over the v2 keys API (HTTP basic auth); missing, bad and stale tokens
// get etcd's errors; a restart keeps users, roles and the enabled state; JWT tokens verify across a
// restart.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd3, EtcdPermissionDeniedError } from 'etcd3';
import { request } from 'undici';
import { Permission_Type as P } from '../../src/gen/authpb/auth.js';
import {
  AuthClient, KVClient, LeaseClient, MaintenanceClient, RangeRequest, WatchClient,
  type RangeResponse, type WatchResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import { LockClient } from '../../src/gen/v3lockpb/v3lock.js';
import { makeTempDir, removeTempDir, startOurServer, type Server } from '../helpers/procs.js';

const { status } = grpc;
const b = (s: string): Buffer => Buffer.from(s);
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const DEADLINE_MS = 10_000;

type Cb<T> = (err: grpc.ServiceError | null, res: T) => void;
type Method<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: Cb<Res>) => unknown;

function md(token: string | undefined): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token !== undefined) m.set('token', token);
  return m;
}

/** Generated grpc-js clients for one endpoint; every call takes the token to send (or none). */
class Conn {
  private readonly creds = grpc.credentials.createInsecure();
  readonly kv: InstanceType<typeof KVClient>;
  readonly auth: InstanceType<typeof AuthClient>;
  readonly lease: InstanceType<typeof LeaseClient>;
  readonly maint: InstanceType<typeof MaintenanceClient>;
  readonly watchClient: InstanceType<typeof WatchClient>;

  constructor(endpoint: string) {
    this.kv = new KVClient(endpoint, this.creds);
    this.auth = new AuthClient(endpoint, this.creds);
    this.lease = new LeaseClient(endpoint, this.creds);
    this.maint = new MaintenanceClient(endpoint, this.creds);
    this.watchClient = new WatchClient(endpoint, this.creds);
  }

  call<Req, Res>(client: grpc.Client, fn: Method<Req, Res>, req: Req, token?: string): Promise<Res> {
    return new Promise((resolve, reject) =>
      fn.call(client, req, md(token), { deadline: Date.now() + DEADLINE_MS }, (e, r) => (e ? reject(e) : resolve(r))));
  }

  range(key: string, token?: string, rangeEnd = ''): Promise<RangeResponse> {
    return this.call(this.kv, this.kv.range, RangeRequest.fromPartial({ key: b(key), rangeEnd: b(rangeEnd) }), token);
  }

  put(key: string, value: string, token?: string, lease = 0n) {
    return this.call(this.kv, this.kv.put, { key: b(key), value: b(value), lease, prevKv: false, ignoreValue: false, ignoreLease: false }, token);
  }

  async authenticate(name: string, password: string): Promise<string> {
    return (await this.call(this.auth, this.auth.authenticate, { name, password })).token;
  }

  /** Opens a watch with `token` on [key, rangeEnd) and returns the first response (created or canceled). */
  watch(key: string, rangeEnd: string, token: string | undefined): { first: Promise<WatchResponse>; next: () => Promise<WatchResponse>; close: () => void } {
    const stream = this.watchClient.watch(md(token));
    const queue: WatchResponse[] = [];
    const waiters: ((r: WatchResponse) => void)[] = [];
    stream.on('data', (r: WatchResponse) => {
      const w = waiters.shift();
      if (w !== undefined) w(r);
      else queue.push(r);
    });
    stream.on('error', () => undefined);
    const next = (): Promise<WatchResponse> => {
      const r = queue.shift();
      if (r !== undefined) return Promise.resolve(r);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no watch response')), DEADLINE_MS);
        waiters.push((x) => { clearTimeout(t); resolve(x); });
      });
    };
    stream.write({ requestUnion: { $case: 'createRequest', value: { key: b(key), rangeEnd: b(rangeEnd), startRevision: 0n, progressNotify: false, filters: [], prevKv: false, watchId: 0n, fragment: false } } });
    return { first: next(), next, close: () => stream.cancel() };
  }

  close(): void {
    for (const c of [this.kv, this.auth, this.lease, this.maint, this.watchClient]) c.close();
  }
}

async function rejectsWith(p: Promise<unknown>, code: grpc.status, details: string): Promise<void> {
  await assert.rejects(p, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `code of "${e.details}"`);
    assert.equal(e.details, details);
    return true;
  });
}

async function gw(server: Server, path: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = token;
  const res = await request(`${server.clientUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> };
}

/** root (root role), alice (role reader: READ on the prefix app/), keys in and outside app/, auth on. */
async function setUp(c: Conn): Promise<void> {
  const auth = c.auth;
  await c.call(auth, auth.userAdd, { name: 'root', password: 'rootpw', options: undefined });
  await c.call(auth, auth.userGrantRole, { user: 'root', role: 'root' });
  await c.call(auth, auth.roleAdd, { name: 'reader' });
  await c.call(auth, auth.roleGrantPermission, { name: 'reader', perm: { permType: P.READ, key: b('app/'), rangeEnd: b('app0') } });
  await c.call(auth, auth.userAdd, { name: 'alice', password: 'alicepw', options: undefined });
  await c.call(auth, auth.userGrantRole, { user: 'alice', role: 'reader' });
  await c.put('app/x', '1');
  await c.put('other/y', '2');
  await c.call(auth, auth.authEnable, {});
}

describe('auth matrix (simple tokens) and restart', () => {
  let server: Server;
  let dataDir: string;
  let c: Conn;
  let root: string;
  let alice: string;

  before(async () => {
    dataDir = join(await makeTempDir('auth-matrix-'), 'data');
    server = await startOurServer({ dataDir });
    c = new Conn(server.endpoint);
    await setUp(c);
    root = await c.authenticate('root', 'rootpw');
    alice = await c.authenticate('alice', 'alicepw');
  });
  after(async () => {
    c?.close();
    await server?.stop();
    await removeTempDir(join(dataDir, '..'));
  });

  test('simple tokens look like etcd\'s: 16 letters, ".", the raft index', () => {
    assert.match(alice, /^[a-zA-Z]{16}\.\d+$/);
    assert.notEqual(alice, root);
  });

  test('gRPC KV: read inside the prefix only, no writes', async () => {
    const r = await c.range('app/x', alice);
    assert.equal(r.kvs[0]?.value.toString(), '1');
    assert.equal((await c.range('app/', alice, 'app0')).count, 1n);
    await rejectsWith(c.put('app/x', 'no', alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await rejectsWith(c.range('other/y', alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await rejectsWith(c.range('app/', alice, 'b'), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await rejectsWith(c.call(c.kv, c.kv.deleteRange, { key: b('app/x'), rangeEnd: b(''), prevKv: false }, alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    // A txn is checked op by op: a read-only one inside the prefix passes, a write in it does not.
    const cmp = { key: b('app/x'), rangeEnd: b(''), result: 0, target: 3, targetUnion: { $case: 'value' as const, value: b('1') } };
    const read = { request: { $case: 'requestRange' as const, value: RangeRequest.fromPartial({ key: b('app/x') }) } };
    const txn = await c.call(c.kv, c.kv.txn, { compare: [cmp], success: [read], failure: [] }, alice);
    assert.equal(txn.succeeded, true);
    const write = { request: { $case: 'requestPut' as const, value: { key: b('app/z'), value: b('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } };
    await rejectsWith(c.call(c.kv, c.kv.txn, { compare: [cmp], success: [write], failure: [] }, alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    // root may do anything
    await c.put('other/y', '3', root);
    assert.equal((await c.range('other/y', root)).kvs[0]?.value.toString(), '3');
  });

  test('gRPC: no token, a bad token, a wrong password', async () => {
    await rejectsWith(c.range('app/x'), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    await rejectsWith(c.put('app/x', 'v'), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    await rejectsWith(c.range('app/x', 'bogus.1'), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    await rejectsWith(c.authenticate('alice', 'wrong'), status.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password');
    await rejectsWith(c.authenticate('nobody', 'x'), status.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password');
  });

  test('gRPC Watch: read permission checked at create', async () => {
    const ok = c.watch('app/', 'app0', alice);
    const created = await ok.first;
    assert.equal(created.created, true);
    assert.equal(created.canceled, false);
    const denied = c.watch('other/', 'other0', alice);
    const d = await denied.first;
    assert.equal(d.canceled, true);
    assert.equal(d.cancelReason, 'rpc error: code = PermissionDenied desc = etcdserver: permission denied');
    const anon = c.watch('app/', 'app0', undefined);
    assert.equal((await anon.first).cancelReason, 'rpc error: code = InvalidArgument desc = etcdserver: user name is empty');
    await c.put('app/x', '4', root);
    const ev = await ok.next();
    assert.equal(ev.events[0]?.kv?.value.toString(), '4');
    for (const w of [ok, denied, anon]) w.close();
  });

  test('gRPC Lease: grant needs no permission, revoke needs write on the lease\'s keys', async () => {
    const { ID } = await c.call(c.lease, c.lease.leaseGrant, { TTL: 60n, ID: 0n }, alice);
    await c.put('other/leased', 'v', root, ID);
    await rejectsWith(c.call(c.lease, c.lease.leaseRevoke, { ID }, alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await rejectsWith(c.call(c.lease, c.lease.leaseRevoke, { ID }), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    await c.call(c.lease, c.lease.leaseRevoke, { ID }, root);
    assert.equal((await c.range('other/leased', root)).count, 0n);
  });

  test('gRPC admin: Auth management and maintenance need root', async () => {
    await rejectsWith(c.call(c.auth, c.auth.userList, {}, alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await rejectsWith(c.call(c.auth, c.auth.roleAdd, { name: 'x' }, alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await rejectsWith(c.call(c.auth, c.auth.roleAdd, { name: 'x' }), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    assert.deepEqual((await c.call(c.auth, c.auth.userGet, { name: 'alice' }, alice)).roles, ['reader']);
    assert.deepEqual((await c.call(c.auth, c.auth.userList, {}, root)).users, ['alice', 'root']);
    // etcd leaves maintenance auth errors unwrapped: UNKNOWN with the auth package's text
    await rejectsWith(c.call(c.maint, c.maint.hashKv, { revision: 0n }, alice), status.UNKNOWN, 'auth: permission denied');
    await rejectsWith(c.call(c.maint, c.maint.defragment, {}), status.UNKNOWN, 'auth: user name is empty');
    assert.ok((await c.call(c.maint, c.maint.hashKv, { revision: 0n }, root)).hash >= 0);
  });

  test('gRPC Lock runs as the caller (etcd runs its recipes with the call\'s token)', async () => {
    const locks = new LockClient(server.endpoint, grpc.credentials.createInsecure());
    try {
      await rejectsWith(c.call(locks, locks.lock, { name: b('app/lock'), lease: 0n }, alice), status.UNKNOWN, 'etcdserver: permission denied');
      await rejectsWith(c.call(locks, locks.lock, { name: b('app/lock'), lease: 0n }), status.UNKNOWN, 'etcdserver: user name is empty');
      const held = await c.call(locks, locks.lock, { name: b('app/lock'), lease: 0n }, root);
      assert.ok(held.key.toString().startsWith('app/lock/'));
      await c.call(locks, locks.unlock, { key: held.key }, root);
    } finally {
      locks.close();
    }
  });

  test('the npm etcd3 client with a user and password', async () => {
    const client = new Etcd3({ hosts: server.clientUrl, auth: { username: 'alice', password: 'alicepw' } });
    try {
      assert.equal(await client.get('app/x').string(), '4');
      await assert.rejects(client.put('app/x').value('no').exec(), EtcdPermissionDeniedError);
      await assert.rejects(client.get('other/y').string(), EtcdPermissionDeniedError);
    } finally {
      client.close();
    }
  });

  test('v2 keys API: HTTP basic auth on the v3 users; read-only on a prefix reads it, cannot write it or read outside it', async () => {
    // The v2 path /app/* is the v3 prefix permission on the v2 prefix's logical keys (/v2/app/).
    await c.call(c.auth, c.auth.roleAdd, { name: 'v2app' }, root);
    await c.call(c.auth, c.auth.roleGrantPermission, { name: 'v2app', perm: { permType: P.READ, key: b('/v2/app/'), rangeEnd: b('/v2/app0') } }, root);
    await c.call(c.auth, c.auth.userGrantRole, { user: 'alice', role: 'v2app' }, root);
    const basic = (cred: string): string => `Basic ${Buffer.from(cred).toString('base64')}`;
    const v2 = async (method: string, path: string, cred?: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> => {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
      if (cred !== undefined) headers.authorization = basic(cred);
      const res = await request(`${server.clientUrl}/v2/keys${path}`, { method: method as 'GET', headers, ...(body === undefined ? {} : { body }) });
      return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> };
    };
    const refused = { status: 401, json: { errorCode: 110, message: 'The request requires user authentication', cause: 'Insufficient credentials', index: 0 } };
    try {
      assert.equal((await v2('PUT', '/app/x', 'root:rootpw', 'value=v2')).status, 201);
      assert.equal((await v2('PUT', '/other/y', 'root:rootpw', 'value=v2')).status, 201);
      const read = await v2('GET', '/app/x', 'alice:alicepw');
      assert.equal(read.status, 200);
      assert.equal((read.json.node as { value: string }).value, 'v2');
      assert.equal((await v2('GET', '/app/?recursive=true', 'alice:alicepw')).status, 200);
      assert.equal((await v2('GET', '/app/x?wait=true&waitIndex=1', 'alice:alicepw')).status, 200);
      assert.deepEqual(await v2('PUT', '/app/x', 'alice:alicepw', 'value=no'), refused);
      assert.deepEqual(await v2('DELETE', '/app/x', 'alice:alicepw'), refused);
      assert.deepEqual(await v2('GET', '/other/y', 'alice:alicepw'), refused);
      assert.deepEqual(await v2('GET', '/?recursive=true', 'alice:alicepw'), refused);
      // no credentials (no guest role), a wrong password, an unknown user: one answer
      assert.deepEqual(await v2('GET', '/app/x'), refused);
      assert.deepEqual(await v2('GET', '/app/x', 'alice:nope'), refused);
      assert.deepEqual(await v2('GET', '/app/x', 'mallory:alicepw'), refused);
      // the grant is live: revoked in v3, gone in v2 at once
      await c.call(c.auth, c.auth.userRevokeRole, { name: 'alice', role: 'v2app' }, root);
      assert.deepEqual(await v2('GET', '/app/x', 'alice:alicepw'), refused);
    } finally {
      await c.call(c.auth, c.auth.roleDelete, { role: 'v2app' }, root);
    }
  });

  test('gateway: /v3/auth/authenticate, Authorization header, etcd\'s statuses and errors', async () => {
    const login = await gw(server, '/v3/auth/authenticate', { name: 'alice', password: 'alicepw' });
    assert.equal(login.status, 200);
    const token = login.json.token as string;
    assert.match(token, /^[a-zA-Z]{16}\.\d+$/);
    const read = await gw(server, '/v3/kv/range', { key: b64('app/x') }, token);
    assert.equal(read.status, 200);
    assert.equal((read.json.kvs as { value: string }[])[0]?.value, b64('4'));
    const denied = { error: 'etcdserver: permission denied', message: 'etcdserver: permission denied', code: 7 };
    assert.deepEqual(await gw(server, '/v3/kv/put', { key: b64('app/x'), value: b64('no') }, token), { status: 403, json: denied });
    assert.deepEqual(await gw(server, '/v3/kv/range', { key: b64('other/y') }, token), { status: 403, json: denied });
    assert.deepEqual(await gw(server, '/v3/auth/user/list', {}, token), { status: 403, json: denied });
    const empty = 'etcdserver: user name is empty';
    assert.deepEqual(await gw(server, '/v3/kv/range', { key: b64('app/x') }), { status: 400, json: { error: empty, message: empty, code: 3 } });
    const bad = 'etcdserver: invalid auth token';
    assert.deepEqual(await gw(server, '/v3/kv/range', { key: b64('app/x') }, `Bearer ${token}`), { status: 401, json: { error: bad, message: bad, code: 16 } });
    const role = await gw(server, '/v3/auth/role/get', { role: 'reader' }, token);
    assert.deepEqual(role.json.perm, [{ key: b64('app/'), range_end: b64('app0') }]);
    const wrong = await gw(server, '/v3/auth/authenticate', { name: 'alice', password: 'nope' });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.code, 3);
  });

  test('gateway: auth management routes, as root', async () => {
    const token = (await gw(server, '/v3/auth/authenticate', { name: 'root', password: 'rootpw' })).json.token as string;
    const ok = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
      const r = await gw(server, path, body, token);
      assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.json)}`);
      return r.json;
    };
    await ok('/v3/auth/user/add', { name: 'bob', password: 'bobpw' });
    await ok('/v3/auth/role/add', { name: 'writer' });
    await ok('/v3/auth/role/grant', { name: 'writer', perm: { permType: 'READWRITE', key: b64('w/'), range_end: b64('w0') } });
    await ok('/v3/auth/user/grant', { user: 'bob', role: 'writer' });
    assert.deepEqual((await ok('/v3/auth/user/get', { name: 'bob' })).roles, ['writer']);
    // setUp granted the root role without adding it: like etcd, it is then not a listed role
    assert.deepEqual((await ok('/v3/auth/role/list', {})).roles, ['reader', 'writer']);
    await ok('/v3/auth/user/changepw', { name: 'bob', password: 'bobpw2' });
    const bob = (await gw(server, '/v3/auth/authenticate', { name: 'bob', password: 'bobpw2' })).json.token as string;
    assert.equal((await gw(server, '/v3/kv/put', { key: b64('w/1'), value: b64('v') }, bob)).status, 200);
    await ok('/v3/auth/role/revoke', { role: 'writer', key: b64('w/'), range_end: b64('w0') });
    assert.equal((await gw(server, '/v3/kv/put', { key: b64('w/1'), value: b64('v') }, bob)).status, 403);
    await ok('/v3/auth/user/revoke', { name: 'bob', role: 'writer' });
    await ok('/v3/auth/role/delete', { role: 'writer' });
    await ok('/v3/auth/user/delete', { name: 'bob' });
    // A deleted user's token is gone with it.
    assert.equal((await gw(server, '/v3/kv/range', { key: b64('w/1') }, bob)).status, 401);
    assert.deepEqual((await ok('/v3/auth/user/list', {})).users, ['alice', 'root']);
  });

  test('a restart keeps users, roles and the enabled state (simple tokens are not kept, as in etcd)', async () => {
    await server.stop();
    server = await startOurServer({ dataDir });
    c.close();
    c = new Conn(server.endpoint);
    await rejectsWith(c.range('app/x', alice), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    await rejectsWith(c.range('app/x'), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    alice = await c.authenticate('alice', 'alicepw');
    root = await c.authenticate('root', 'rootpw');
    assert.equal((await c.range('app/x', alice)).kvs[0]?.value.toString(), '4');
    await rejectsWith(c.range('other/y', alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    assert.deepEqual((await c.call(c.auth, c.auth.roleList, {}, root)).roles, ['reader']);
    assert.deepEqual((await c.call(c.auth, c.auth.userGet, { name: 'root' }, root)).roles, ['root']);
    const perm = (await c.call(c.auth, c.auth.roleGet, { role: 'reader' }, root)).perm;
    assert.deepEqual(perm.map((p) => [p.permType, Buffer.from(p.key).toString(), Buffer.from(p.rangeEnd).toString()]), [[P.READ, 'app/', 'app0']]);
    // Disabling refuses every token from then on, as etcd does, and lets requests without one in.
    await c.call(c.auth, c.auth.authDisable, {}, root);
    await rejectsWith(c.range('app/x', root), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    assert.equal((await c.range('other/y')).kvs[0]?.value.toString(), '3');
  });
});

describe('JWT tokens', () => {
  let server: Server;
  let dir: string;
  let c: Conn;
  let args: string[];

  before(async () => {
    dir = await makeTempDir('auth-jwt-');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    args = ['--auth-token', `jwt,pub-key=${join(dir, 'pub.pem')},priv-key=${join(dir, 'priv.pem')},sign-method=RS256,ttl=10m`];
    server = await startOurServer({ dataDir: join(dir, 'data'), extraArgs: args });
    c = new Conn(server.endpoint);
    await setUp(c);
  });
  after(async () => {
    c?.close();
    await server?.stop();
    await removeTempDir(dir);
  });

  test('a JWT verifies across a restart; an auth change makes it stale', async () => {
    const alice = await c.authenticate('alice', 'alicepw');
    assert.equal(alice.split('.').length, 3);
    const claims = JSON.parse(Buffer.from(alice.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.username, 'alice');
    assert.equal((await c.range('app/x', alice)).kvs[0]?.value.toString(), '1');
    await server.stop();
    server = await startOurServer({ dataDir: join(dir, 'data'), extraArgs: args });
    c.close();
    c = new Conn(server.endpoint);
    assert.equal((await c.range('app/x', alice)).kvs[0]?.value.toString(), '1');
    await rejectsWith(c.range('other/y', alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    const forged = [alice.split('.')[0], Buffer.from(JSON.stringify({ ...claims, username: 'root' })).toString('base64url'), alice.split('.')[2]].join('.');
    await rejectsWith(c.range('other/y', forged), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    const root = await c.authenticate('root', 'rootpw');
    await c.call(c.auth, c.auth.roleAdd, { name: 'another' }, root);
    await rejectsWith(c.range('app/x', alice), status.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old');
    await rejectsWith(c.put('app/x', 'v', root), status.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old');
    // Auth management checks the root role only: a stale root JWT still manages users and roles.
    await c.call(c.auth, c.auth.roleAdd, { name: 'third' }, root);
    const fresh = await c.authenticate('alice', 'alicepw');
    assert.equal((await c.range('app/x', fresh)).kvs[0]?.value.toString(), '1');
  });
});

describe('simple token TTL (--auth-token-ttl)', () => {
  let server: Server;
  let dir: string;
  let c: Conn;

  before(async () => {
    dir = await makeTempDir('auth-ttl-');
    server = await startOurServer({ dataDir: join(dir, 'data'), extraArgs: ['--auth-token-ttl', '1'] });
    c = new Conn(server.endpoint);
    await setUp(c);
  });
  after(async () => {
    c?.close();
    await server?.stop();
    await removeTempDir(dir);
  });

  test('a token used within its TTL lives on; an idle one expires', async () => {
    const used = await c.authenticate('alice', 'alicepw');
    const idle = await c.authenticate('alice', 'alicepw');
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await c.range('app/x', used)).count, 1n);
    }
    await rejectsWith(c.range('app/x', idle), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
  });
});

test('with auth on, the server (re)starts and /health stays true: the probe\'s refusal proves the read path, as in etcd 3.5', async () => {
  const { startGateway } = await import('../gateway/harness.js');
  const { makeTempDir, removeTempDir } = await import('../helpers/procs.js');
  const dir = await makeTempDir('auth-health-');
  try {
    let g = await startGateway([], dir);
    const post = (path: string, body: object, token?: string) => fetch(`${g.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: token ? { authorization: token } : {} });
    assert.equal((await post('/v3/auth/user/add', { name: 'root', password: 'pw' })).status, 200);
    assert.equal((await post('/v3/auth/user/grant', { user: 'root', role: 'root' })).status, 200);
    assert.equal((await post('/v3/auth/enable', {})).status, 200);
    assert.deepEqual(await (await fetch(`${g.url}/health`)).json(), { health: 'true', reason: '' });
    await g.close();
    g = await startGateway([], dir);
    try {
      assert.deepEqual(await (await fetch(`${g.url}/health`)).json(), { health: 'true', reason: '' });
      const token = ((await (await post('/v3/auth/authenticate', { name: 'root', password: 'pw' })).json()) as { token: string }).token;
      assert.equal((await post('/v3/kv/put', { key: 'YQ==', value: 'Yg==' }, token)).status, 200);
    } finally {
      await g.close();
    }
  } finally {
    await removeTempDir(dir);
  }
});
