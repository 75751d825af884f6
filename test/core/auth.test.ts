// The pure auth pieces: merged range permissions (etcd's range permission cache), the auth store's
// rules and errors, its persistence, simple and JWT tokens on a hand-driven clock, password hashes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { EtcdError } from '../../src/backend/errors.js';
import {
  AuthStore, checkPassword, checkTxnAuth, covers, hashPassword, JwtTokens, mergePermissions, SimpleTokens, type AuthInfo,
} from '../../src/core/auth/index.js';
import { Permission_Type as P, type Permission } from '../../src/gen/authpb/auth.js';
import { RangeRequest, type TxnRequest } from '../../src/gen/etcdserverpb/rpc.js';
import type { Clock } from '../../src/util/clock.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const perm = (permType: P, key: string, rangeEnd = ''): Permission => ({ permType, key: b(key), rangeEnd: b(rangeEnd) });

function fakeClock(): Clock & { advance(ms: number): void } {
  let now = 1_000_000;
  return { nowMs: () => now, after: () => () => undefined, advance: (ms) => { now += ms; } };
}

const coverCases: { name: string; perms: Permission[]; key: string; end: string; read: boolean; write: boolean }[] = [
  { name: 'single key granted', perms: [perm(P.READ, 'a')], key: 'a', end: '', read: true, write: false },
  { name: 'other key', perms: [perm(P.READ, 'a')], key: 'b', end: '', read: false, write: false },
  { name: 'key not a prefix', perms: [perm(P.READ, 'a')], key: 'a', end: 'b', read: false, write: false },
  { name: 'range inside', perms: [perm(P.READWRITE, 'c', 'e')], key: 'c1', end: 'd', read: true, write: true },
  { name: 'range end exclusive', perms: [perm(P.READ, 'c', 'e')], key: 'e', end: '', read: false, write: false },
  { name: 'range past the end', perms: [perm(P.READ, 'c', 'e')], key: 'c', end: 'f', read: false, write: false },
  { name: 'touching ranges add up', perms: [perm(P.READ, 'a', 'c'), perm(P.READ, 'c', 'e')], key: 'b', end: 'd', read: true, write: false },
  { name: 'overlapping ranges add up', perms: [perm(P.READ, 'c', 'e'), perm(P.READ, 'a', 'd')], key: 'a', end: 'e', read: true, write: false },
  { name: 'a gap is not covered', perms: [perm(P.READ, 'a', 'b'), perm(P.READ, 'c', 'e')], key: 'a', end: 'd', read: false, write: false },
  { name: 'key plus range', perms: [perm(P.READ, 'a'), perm(P.READ, 'a\0', 'b')], key: 'a', end: 'b', read: true, write: false },
  { name: 'from key ("\\0" end)', perms: [perm(P.WRITE, 'z', '\0')], key: 'zzz', end: '\0', read: false, write: true },
  { name: 'from key does not cover earlier keys', perms: [perm(P.WRITE, 'z', '\0')], key: 'y', end: '', read: false, write: false },
  { name: 'everything', perms: [perm(P.READ, '\0', '\0')], key: '\0', end: '\0', read: true, write: false },
  { name: 'read and write merged apart', perms: [perm(P.READ, 'a', 'c'), perm(P.WRITE, 'b', 'd')], key: 'b', end: 'c', read: true, write: true },
  { name: 'no permissions', perms: [], key: 'a', end: '', read: false, write: false },
];
for (const c of coverCases) {
  test(`permissions: ${c.name}`, () => {
    const m = mergePermissions(c.perms);
    assert.equal(covers(m.read, b(c.key), b(c.end)), c.read, 'read');
    assert.equal(covers(m.write, b(c.key), b(c.end)), c.write, 'write');
  });
}

/** The reference: a linear walk over the merged intervals (what `covers` did before its binary search). */
function coversByScan(set: readonly { start: Buffer; end: Buffer | null }[], key: Buffer, rangeEnd: Buffer): boolean {
  const start = key;
  const end = rangeEnd.length === 0 ? Buffer.concat([key, Buffer.from([0])]) : rangeEnd.length === 1 && rangeEnd[0] === 0 ? null : rangeEnd;
  for (const iv of set) {
    if (Buffer.compare(iv.start, start) > 0) return false;
    if (iv.end !== null && Buffer.compare(start, iv.end) >= 0) continue;
    const endOk = end === null ? iv.end === null : iv.end === null || Buffer.compare(end, iv.end) <= 0;
    return endOk || (end !== null && Buffer.compare(end, start) <= 0);
  }
  return false;
}

test('permissions: the binary search agrees with a linear scan on random permission sets', () => {
  // Short keys over a 3-letter alphabet (plus "\0") so that starts, ends and queries collide often.
  const key = fc.array(fc.constantFrom(0, 0x61, 0x62, 0x63), { minLength: 0, maxLength: 3 }).map((a) => Buffer.from(a));
  const permArb = fc.record({ t: fc.constantFrom(P.READ, P.WRITE, P.READWRITE), k: key, e: key });
  fc.assert(
    fc.property(fc.array(permArb, { maxLength: 12 }), fc.array(fc.tuple(key, key), { minLength: 1, maxLength: 20 }), (ps, queries) => {
      const m = mergePermissions(ps.map((p) => ({ permType: p.t, key: p.k, rangeEnd: p.e })));
      for (const [k, e] of queries) {
        for (const set of [m.read, m.write]) assert.equal(covers(set, k, e), coversByScan(set, k, e), `[${k.toString('hex')}, ${e.toString('hex')})`);
      }
    }),
    { numRuns: 2000, seed: 7 },
  );
});

test('merged intervals are sorted and disjoint', () => {
  const m = mergePermissions([perm(P.READ, 'm', 'p'), perm(P.READ, 'a', 'c'), perm(P.READ, 'b', 'd'), perm(P.READ, 'x', '\0'), perm(P.READ, 'y')]);
  assert.deepEqual(m.read.map((iv) => [iv.start.toString(), iv.end?.toString() ?? null]), [['a', 'd'], ['m', 'p'], ['x', null]]);
});

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof EtcdError) return e.code;
    throw e;
  }
}

function seeded(): { storage: MemoryStorage; auth: AuthStore } {
  const storage = new MemoryStorage();
  const auth = new AuthStore(storage);
  auth.userAdd('root', b('h-root'), false);
  auth.userAdd('alice', b('h-alice'), false);
  auth.roleAdd('reader');
  auth.userGrantRole('alice', 'reader');
  auth.roleGrantPermission({ name: 'reader', perm: perm(P.READ, 'p/', 'p0') });
  return { storage, auth };
}

test('auth store: the rules and errors of etcd 3.4', () => {
  const { auth } = seeded();
  assert.equal(codeOf(() => auth.enable()), 'rootRoleNotExist');
  assert.equal(codeOf(() => auth.userAdd('', b(''), false)), 'userEmpty');
  assert.equal(codeOf(() => auth.userAdd('alice', b(''), false)), 'userAlreadyExist');
  assert.equal(codeOf(() => auth.roleAdd('')), 'roleEmpty');
  assert.equal(codeOf(() => auth.roleAdd('reader')), 'roleAlreadyExist');
  assert.equal(codeOf(() => auth.userGrantRole('bob', 'reader')), 'userNotFound');
  assert.equal(codeOf(() => auth.userGrantRole('alice', 'nosuch')), 'roleNotFound');
  assert.equal(codeOf(() => auth.userRevokeRole('alice', 'nosuch')), 'roleNotGranted');
  assert.equal(codeOf(() => auth.roleRevokePermission({ role: 'reader', key: b('x'), rangeEnd: b('') })), 'permissionNotGranted');
  assert.equal(codeOf(() => auth.roleGrantPermission({ name: 'nosuch', perm: perm(P.READ, 'a') })), 'roleNotFound');
  const rev = auth.revision;
  auth.userGrantRole('root', 'root'); // the root role need not exist to be granted
  assert.equal(auth.revision, rev + 1);
  auth.enable();
  assert.ok(auth.enabled);
  assert.equal(codeOf(() => auth.userDelete('root')), 'invalidAuthMgmt');
  assert.equal(codeOf(() => auth.userRevokeRole('root', 'root')), 'invalidAuthMgmt');
  assert.equal(codeOf(() => auth.roleDelete('root')), 'invalidAuthMgmt');
  assert.deepEqual(auth.userNames(), ['alice', 'root']);
  // Granting the same permission again changes its type in place.
  auth.roleGrantPermission({ name: 'reader', perm: perm(P.READWRITE, 'p/', 'p0') });
  auth.roleGrantPermission({ name: 'reader', perm: perm(P.READ, 'a') });
  assert.deepEqual(auth.rolePermissions('reader').map((p) => [p.permType, Buffer.from(p.key).toString()]), [[P.READ, 'a'], [P.READWRITE, 'p/']]);
  // Deleting a role takes it away from its users.
  auth.roleDelete('reader');
  assert.deepEqual(auth.userRoles('alice'), []);
});

test('auth store: who may do what once enabled', () => {
  const { auth } = seeded();
  auth.userGrantRole('root', 'root');
  const alice: AuthInfo = { username: 'alice', revision: auth.revision };
  const root: AuthInfo = { username: 'root', revision: auth.revision };
  // Off: everything goes, with or without a user.
  assert.equal(codeOf(() => auth.checkKeys(null, 'write', b('x'), b(''))), undefined);
  auth.enable();
  const now = { ...alice, revision: auth.revision };
  assert.equal(codeOf(() => auth.checkKeys(null, 'read', b('p/a'), b(''))), 'userEmpty');
  assert.equal(codeOf(() => auth.checkKeys(now, 'read', b('p/a'), b(''))), undefined);
  assert.equal(codeOf(() => auth.checkKeys(now, 'write', b('p/a'), b(''))), 'permissionDenied');
  assert.equal(codeOf(() => auth.checkKeys(now, 'read', b('q'), b(''))), 'permissionDenied');
  assert.equal(codeOf(() => auth.checkKeys(alice, 'read', b('p/a'), b(''))), 'authOldRevision');
  assert.equal(codeOf(() => auth.checkKeys({ username: 'ghost', revision: auth.revision }, 'read', b('p/a'), b(''))), 'permissionDenied');
  assert.equal(codeOf(() => auth.checkKeys({ ...root, revision: auth.revision }, 'write', b('anything'), b('\0'))), undefined);
  assert.equal(codeOf(() => auth.checkAdmin(now)), 'permissionDenied');
  assert.equal(codeOf(() => auth.checkAdmin(null)), 'userEmpty');
  assert.equal(codeOf(() => auth.checkAdmin({ username: 'ghost', revision: 1 })), 'userNotFound');
  assert.equal(codeOf(() => auth.checkUserGet(now, 'alice')), undefined);
  assert.equal(codeOf(() => auth.checkUserGet(now, 'root')), 'permissionDenied');
  assert.equal(codeOf(() => auth.checkRoleGet(now, 'reader')), undefined);
  assert.equal(codeOf(() => auth.checkRoleGet(now, 'root')), 'permissionDenied');
  // A txn needs READ for each compare and the right permission for every op, nested ones too.
  const put = (key: string): TxnRequest['success'][number] => ({ request: { $case: 'requestPut', value: { key: b(key), value: b('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } });
  const txn = (ops: TxnRequest['success'], compareKey = 'p/a'): TxnRequest => ({
    compare: [{ key: b(compareKey), rangeEnd: b(''), result: 0, target: 0, targetUnion: { $case: 'version', value: 0n } }],
    success: ops, failure: [],
  });
  const noLeases = (): string[] => [];
  const read = { request: { $case: 'requestRange' as const, value: RangeRequest.fromPartial({ key: b('p/b') }) } };
  assert.equal(codeOf(() => checkTxnAuth(auth, now, txn([read]), noLeases)), undefined);
  assert.equal(codeOf(() => checkTxnAuth(auth, now, txn([read], 'q'), noLeases)), 'permissionDenied');
  assert.equal(codeOf(() => checkTxnAuth(auth, now, txn([put('p/b')]), noLeases)), 'permissionDenied');
  assert.equal(codeOf(() => checkTxnAuth(auth, now, txn([{ request: { $case: 'requestTxn', value: txn([put('p/b')]) } }]), noLeases)), 'permissionDenied');
});

test('auth store: state survives a reload from its storage', () => {
  const { storage, auth } = seeded();
  auth.userGrantRole('root', 'root');
  auth.enable();
  auth.userAdd('nopw', b(''), true);
  const again = new AuthStore(storage);
  assert.equal(again.enabled, true);
  assert.equal(again.revision, auth.revision);
  assert.deepEqual(again.userNames(), ['alice', 'nopw', 'root']);
  assert.deepEqual(again.userRoles('root'), ['root']);
  assert.deepEqual(again.rolePermissions('reader'), auth.rolePermissions('reader'));
  assert.deepEqual(again.passwordHashOf('alice'), b('h-alice'));
  assert.equal(codeOf(() => again.passwordHashOf('nopw')), 'noPasswordUser');
  assert.equal(again.passwordHashOf('ghost'), undefined);
});

test('simple tokens: "<16 letters>.<index>", TTL renewed on use, invalidated per user and on disable', () => {
  const clock = fakeClock();
  const tokens = new SimpleTokens(clock, 300_000);
  const t = tokens.assign('alice', 3, 'abcdefghijklmnop', 42);
  assert.equal(t, 'abcdefghijklmnop.42');
  clock.advance(299_000);
  assert.deepEqual(tokens.info(t, 7), { username: 'alice', revision: 7 });
  clock.advance(299_000); // renewed by the use above
  assert.ok(tokens.info(t, 7) !== undefined);
  clock.advance(300_000);
  assert.equal(tokens.info(t, 7), undefined);
  const u = tokens.assign('bob', 3, 'ABCDEFGHIJKLMNOP', 43);
  tokens.invalidateUser('bob');
  assert.equal(tokens.info(u, 7), undefined);
  const v = tokens.assign('carol', 3, 'QRSTUVWXYZabcdef', 44);
  tokens.disable();
  assert.equal(tokens.info(v, 7), undefined);
});

for (const alg of ['RS256', 'PS384', 'ES256'] as const) {
  test(`jwt tokens (${alg}): verify with the public key alone, carry the auth revision, expire`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwt-'));
    try {
      const { privateKey, publicKey } = alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
      writeFileSync(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
      const clock = fakeClock();
      const opts = { signMethod: alg, publicKeyPath: join(dir, 'pub.pem'), privateKeyPath: join(dir, 'priv.pem'), ttlMs: 60_000 };
      const t = new JwtTokens(clock, opts).assign('alice', 9);
      const verifier = new JwtTokens(clock, { ...opts, privateKeyPath: '' });
      assert.deepEqual(verifier.info(t), { username: 'alice', revision: 9 });
      const [h, c, s] = t.split('.') as [string, string, string];
      const forged = Buffer.from(JSON.stringify({ username: 'root', revision: 9, exp: 9e9 })).toString('base64url');
      assert.equal(verifier.info(`${h}.${forged}.${s}`), undefined);
      assert.equal(verifier.info(`${h}.${c}`), undefined);
      clock.advance(60_000);
      assert.equal(verifier.info(t), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('jwt tokens: a verified token is remembered until it expires; a changed signature is checked again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-'));
  try {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const clock = fakeClock();
    const tokens = new JwtTokens(clock, { signMethod: 'RS256', publicKeyPath: join(dir, 'pub.pem'), privateKeyPath: join(dir, 'priv.pem'), ttlMs: 10_000 });
    const t = tokens.assign('alice', 3);
    for (let i = 0; i < 3; i++) assert.deepEqual(tokens.info(t), { username: 'alice', revision: 3 });
    // Same header and claims, another signature: not the remembered token, so it is verified (and fails).
    const [h, c, sig] = t.split('.') as [string, string, string];
    const bad = Buffer.from(sig, 'base64url');
    bad[0] = bad[0]! ^ 1;
    assert.equal(tokens.info(`${h}.${c}.${bad.toString('base64url')}`), undefined);
    assert.deepEqual(tokens.info(t), { username: 'alice', revision: 3 });
    clock.advance(9_000);
    assert.deepEqual(tokens.info(t), { username: 'alice', revision: 3 });
    clock.advance(1_000);
    assert.equal(tokens.info(t), undefined, 'expired, although remembered');
    assert.equal(tokens.info(t), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('password hashes are salted and check only the right password', async () => {
  const h1 = await hashPassword('secret');
  const h2 = await hashPassword('secret');
  assert.notDeepEqual(h1, h2);
  assert.equal(await checkPassword('secret', h1), true);
  assert.equal(await checkPassword('Secret', h1), false);
  assert.equal(await checkPassword('secret', b('not a hash')), false);
});
