// The pure part of v2 auth over v3 auth (src/v2/auth.ts): v2 patterns <-> v3 permissions on the
// v2 prefix's logical keys, what a request needs, and basic-auth parsing as Go's BasicAuth.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergePermissions } from '../../src/core/auth/permissions.js';
import { Permission_Type as P } from '../../src/gen/authpb/auth.js';
import { parseBasicAuth, permissionsOf, V2PermissionMap } from '../../src/v2/auth.js';

const map = new V2PermissionMap('/v2');
const perm = (pattern: string, permType: P) => ({ permType, ...map.rangeOf(pattern) });

test('a v2 pattern is a v3 range on the logical key, and back', () => {
  assert.deepEqual(map.rangeOf('/foo/*'), { key: Buffer.from('/v2/foo/'), rangeEnd: Buffer.from('/v2/foo0') });
  assert.deepEqual(map.rangeOf('/foo'), { key: Buffer.from('/v2/foo'), rangeEnd: Buffer.alloc(0) });
  assert.deepEqual(map.rangeOf('/*'), { key: Buffer.from('/v2/'), rangeEnd: Buffer.from('/v20') });
  for (const p of ['/foo/*', '/foo', '/*', '/foo*']) assert.equal(map.patternOf(perm(p, P.READ)), p);
  // not nameable as a v2 pattern: outside the prefix, or an arbitrary range
  assert.equal(map.patternOf({ permType: P.READ, key: Buffer.from('app/'), rangeEnd: Buffer.from('app0') }), undefined);
  assert.equal(map.patternOf({ permType: P.READ, key: Buffer.from('/v2/a'), rangeEnd: Buffer.from('/v2/c') }), undefined);
  assert.deepEqual(map.kvOf([perm('/a/*', P.READWRITE), perm('/b', P.WRITE), perm('/c', P.READ)]), { read: ['/a/*', '/c'], write: ['/a/*', '/b'] });
  // a trailing slash on the prefix changes nothing
  assert.deepEqual(new V2PermissionMap('/v2/').rangeOf('/x'), map.rangeOf('/x'));
});

test('what a request needs: the key for a plain request, the range under it for a recursive one', () => {
  const perms = mergePermissions([perm('/foo/*', P.READ), perm('/foo/w', P.WRITE), perm('/bar', P.READ)]);
  const allows = (key: string, write = false, recursive = false): boolean => map.allows(perms, { key, write, recursive });
  assert.equal(allows('/foo/a'), true);
  assert.equal(allows('/foo/a/b'), true);
  assert.equal(allows('/foo'), false);
  assert.equal(allows('/foo/a', true), false);
  assert.equal(allows('/foo/w', true), true);
  assert.equal(allows('/bar'), true);
  assert.equal(allows('/bar', false, true), false); // a single-key grant covers no subtree
  assert.equal(allows('/foo', false, true), false); // etcd: /foo/* is no recursive access to /foo
  assert.equal(allows('/foo/', false, true), true);
  assert.equal(allows(''), false); // GET /v2/keys: root only
  assert.equal(map.allows('all', { key: '', write: true, recursive: true }), true);
  assert.equal(map.allows(undefined, { key: '/foo/a', write: false, recursive: false }), false);
  assert.equal(permissionsOf(['reader', 'root'], () => []), 'all');
});

test('basic auth as Go reads it', () => {
  const h = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
  assert.deepEqual(parseBasicAuth(h('alice:pw')), { user: 'alice', password: 'pw' });
  assert.deepEqual(parseBasicAuth(h('alice:pw:x')), { user: 'alice', password: 'pw:x' });
  assert.deepEqual(parseBasicAuth(`basic ${Buffer.from('a:b').toString('base64')}`), { user: 'a', password: 'b' });
  assert.deepEqual(parseBasicAuth(h(':')), { user: '', password: '' });
  assert.equal(parseBasicAuth(h('nocolon')), undefined);
  assert.equal(parseBasicAuth('Basic !!!'), undefined);
  assert.equal(parseBasicAuth('Bearer xyz'), undefined);
  assert.equal(parseBasicAuth('Basic YWJj'), undefined); // "abc": no colon
});
