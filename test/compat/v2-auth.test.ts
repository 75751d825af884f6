// v2 auth over v3 auth. (1) A differential test: one sequence of /v2/auth and /v2/keys requests
// (enable auth, users, roles, grants, allowed and refused reads and writes, bad passwords, guest,
// disable) sent to real etcd 3.4 with --enable-v2 (its own v2 auth store) and to our server (v2
// auth mapped on v3 users and roles); status, etcd's headers and the bodies must match, indexes
// normalised. (2) Real v2 clients against ours: `ETCDCTL_API=2 etcdctl --username` and python3-etcd
// with username/password. (3) Cross-protocol: a v3 role made with v3 etcdctl governs v2 access, a
// v2 role made through /v2/auth is a v3 permission that v3 etcdctl lists.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { etcdctl, hasEtcd, startOurServer, startRealEtcd, type EtcdctlResult, type Server } from '../helpers/procs.js';

interface Step {
  readonly method: string;
  readonly path: string;
  /** "user:password" for basic auth; `raw` sends an Authorization header as is. */
  readonly as?: string;
  readonly raw?: string;
  readonly body?: string;
  readonly form?: boolean;
}

interface Answer {
  readonly status: number;
  readonly headers: string;
  readonly body: unknown;
}

const HEADERS = ['content-type', 'x-etcd-cluster-id', 'x-etcd-index', 'www-authenticate', 'allow'] as const;

/**
 * Index numbers differ between a native v2 store and v3 revisions: only their presence is compared.
 * A permission list emptied by a revoke is [] in etcd's v2 store and null here (v3 keeps no empty
 * list; a documented difference): both compare as null.
 */
function normalize(v: unknown, key = ''): unknown {
  if (Array.isArray(v) && v.length === 0 && (key === 'read' || key === 'write')) return null;
  if (Array.isArray(v)) return v.map((x) => normalize(x));
  if (typeof v === 'number') return key === 'errorCode' ? v : '<n>';
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = normalize(x, k);
  return out;
}

function authHeader(s: Step): Record<string, string> {
  if (s.raw !== undefined) return { authorization: s.raw };
  if (s.as !== undefined) return { authorization: `Basic ${Buffer.from(s.as).toString('base64')}` };
  return {};
}

async function send(base: string, s: Step): Promise<Answer> {
  const headers: Record<string, string> = { ...authHeader(s) };
  if (s.form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const init: RequestInit = { method: s.method, headers, redirect: 'manual' };
  if (s.body !== undefined) init.body = s.body;
  const resp = await fetch(base + s.path, init);
  const text = await resp.text();
  // the servers' own URLs (the machine list) differ
  let body: unknown = text.replace(/http:\/\/127\.0\.0\.1:\d+/g, '<url>');
  if (text !== '' && (resp.headers.get('content-type') ?? '').startsWith('application/json')) {
    body = { json: normalize(JSON.parse(text)), newline: text.endsWith('\n') };
  }
  const present = HEADERS.filter((h) => resp.headers.get(h) !== null)
    .map((h) => (h === 'content-type' || h === 'allow' || h === 'www-authenticate' ? `${h}=${resp.headers.get(h)}` : h));
  return { status: resp.status, headers: present.join(','), body };
}

const ROOT = 'root:rootpw';
const ALICE = 'alice:apw';
const opt = (as: string | undefined): { as?: string } => (as === undefined ? {} : { as });
const json = (method: string, path: string, body: unknown, as?: string): Step =>
  ({ method, path, body: typeof body === 'string' ? body : JSON.stringify(body), ...opt(as) });
const get = (path: string, as?: string): Step => ({ method: 'GET', path, ...opt(as) });
const put = (path: string, value: string, as?: string): Step => ({ method: 'PUT', path, body: `value=${value}`, form: true, ...opt(as) });
const del = (path: string, as?: string): Step => ({ method: 'DELETE', path, ...opt(as) });

/** The sequence: every step's answer is compared; the label says what it shows. */
const SEQUENCE: readonly (readonly [string, Step])[] = [
  ['auth off by default', get('/v2/auth/enable')],
  ['no users yet: null', get('/v2/auth/users')],
  ['the root role always exists', get('/v2/auth/roles')],
  ['enable needs a root user', { method: 'PUT', path: '/v2/auth/enable' }],
  ['create root: it holds the root role', json('PUT', '/v2/auth/users/root', { user: 'root', password: 'rootpw' })],
  ['name must match the URL', json('PUT', '/v2/auth/users/root', { user: 'other', password: 'x' })],
  ['no password, no user', json('PUT', '/v2/auth/users/carl', { user: 'carl' })],
  ['a body that is not JSON', json('PUT', '/v2/auth/roles/reader', 'garbage')],
  ['create a role with a prefix permission', json('PUT', '/v2/auth/roles/reader', { role: 'reader', permissions: { kv: { read: ['/foo/*'] } } })],
  ['grant a single-key write', json('PUT', '/v2/auth/roles/reader', { role: 'reader', grant: { kv: { write: ['/foo/w'] } } })],
  ['revoking what was never granted changes nothing', json('PUT', '/v2/auth/roles/reader', { role: 'reader', revoke: { kv: { write: ['/nothere'] } } })],
  ['role name must match the URL', json('PUT', '/v2/auth/roles/reader', { role: 'other', grant: { kv: { write: ['/x'] } } })],
  ['a role exists once', json('PUT', '/v2/auth/roles/reader', { role: 'reader' })],
  ['the root role cannot be created', json('PUT', '/v2/auth/roles/root', { role: 'root' })],
  ['nor deleted', del('/v2/auth/roles/root')],
  ['an unknown role', get('/v2/auth/roles/missing')],
  ['a role with no permissions', json('PUT', '/v2/auth/roles/nop', { role: 'nop' })],
  ['read it back', get('/v2/auth/roles/nop')],
  ['grant read and write of one pattern (one v3 READWRITE permission)', json('PUT', '/v2/auth/roles/nop', { role: 'nop', grant: { kv: { read: ['/rw/*'], write: ['/rw/*'] } } })],
  ['revoke the read half', json('PUT', '/v2/auth/roles/nop', { role: 'nop', revoke: { kv: { read: ['/rw/*'] } } })],
  ['permissions and grant together', json('PUT', '/v2/auth/roles/nop', { role: 'nop', permissions: { kv: { read: ['/a'] } }, grant: { kv: { read: ['/b'] } } })],
  ['grant to a role that does not exist', json('PUT', '/v2/auth/roles/ghost', { role: 'ghost', grant: { kv: { read: ['/b'] } } })],
  ['create a user with roles (etcd answers 200)', json('PUT', '/v2/auth/users/alice', { user: 'alice', password: 'apw', roles: ['reader'] })],
  ['create a user without roles (201)', json('PUT', '/v2/auth/users/bob', { user: 'bob', password: 'bpw' })],
  ['grant a role', json('PUT', '/v2/auth/users/bob', { user: 'bob', grant: ['reader'] })],
  ['grant it again', json('PUT', '/v2/auth/users/bob', { user: 'bob', grant: ['reader'] })],
  ['revoke it', json('PUT', '/v2/auth/users/bob', { user: 'bob', revoke: ['reader'] })],
  ['revoke it again', json('PUT', '/v2/auth/users/bob', { user: 'bob', revoke: ['reader'] })],
  ['nothing to update', json('PUT', '/v2/auth/users/bob', { user: 'bob' })],
  ['roles and grant together', json('PUT', '/v2/auth/users/bob', { user: 'bob', roles: ['nop'], grant: ['reader'] })],
  ['change a password', json('PUT', '/v2/auth/users/bob', { user: 'bob', password: 'bpw2' })],
  ['a user with its roles', get('/v2/auth/users/alice')],
  ['an unknown user', get('/v2/auth/users/nobody')],
  ['every user', get('/v2/auth/users')],
  ['every user (trailing slash)', get('/v2/auth/users/')],
  ['a method the user route does not take', { method: 'POST', path: '/v2/auth/users/x' }],
  ['enable', { method: 'PUT', path: '/v2/auth/enable' }],
  ['enabled', get('/v2/auth/enable')],
  ['enable again', { method: 'PUT', path: '/v2/auth/enable', as: ROOT }],
  ['auth API without credentials', get('/v2/auth/roles')],
  ['auth API as a non-root user', get('/v2/auth/users/alice', ALICE)],
  ['enabling made a guest role with full access', get('/v2/auth/roles', ROOT)],
  ['the guest writes (guest role)', put('/v2/keys/foo/a', '1')],
  ['alice reads inside /foo/*', get('/v2/keys/foo/a', ALICE)],
  ['alice cannot write it', put('/v2/keys/foo/a', '2', ALICE)],
  ['alice writes her one writable key', put('/v2/keys/foo/w', '2', ALICE)],
  ['alice cannot read outside /foo/*', get('/v2/keys/bar', ALICE)],
  ['HEAD is a read', { method: 'HEAD', path: '/v2/keys/foo/a', as: ALICE }],
  ['DELETE is a write', del('/v2/keys/foo/a', ALICE)],
  ['a recursive delete needs write on the whole range', del('/v2/keys/foo/?recursive=true', ALICE)],
  ['a delete she may do', del('/v2/keys/foo/w', ALICE)],
  ['POST (in-order) is a write', { method: 'POST', path: '/v2/keys/foo/q', body: 'value=j', form: true, as: ALICE }],
  ['a recursive read of /foo needs a permission covering /foo itself', get('/v2/keys/foo?recursive=true', ALICE)],
  ['...which /foo/ is', get('/v2/keys/foo/?recursive=true&sorted=true', ALICE)],
  ['a watch is a read', get('/v2/keys/bar?wait=true', ALICE)],
  ['a wrong password', get('/v2/keys/foo/a', 'alice:wrong')],
  ['an unknown user', get('/v2/keys/foo/a', 'nobody:apw')],
  ['a password with a colon', get('/v2/keys/foo/a', 'alice:apw:x')],
  ['not base64', { method: 'GET', path: '/v2/keys/foo/a', raw: 'Basic !!!' }],
  ['not basic', { method: 'GET', path: '/v2/keys/foo/a', raw: 'Bearer xyz' }],
  ['a bad request is answered 400 before auth', { method: 'GET', path: '/v2/keys/foo/a?recursive=maybe', as: 'nobody:x' }],
  ['root reads everything', get('/v2/keys/foo/a', ROOT)],
  ['delete the guest role', del('/v2/auth/roles/guest', ROOT)],
  ['no credentials: no access any more', get('/v2/keys/foo/a')],
  ['GET /v2/keys is refused to all but root', get('/v2/keys', ALICE)],
  ['member changes need root', json('POST', '/v2/members', { peerURLs: ['http://127.0.0.1:1'] })],
  ['the machine list is open', get('/v2/machines')],
  ['disable needs root', del('/v2/auth/enable', ALICE)],
  ['root cannot be deleted while auth is on', del('/v2/auth/users/root', ROOT)],
  ['delete a user', del('/v2/auth/users/bob', ROOT)],
  ['delete it again', del('/v2/auth/users/bob', ROOT)],
  ['delete a role', del('/v2/auth/roles/nop', ROOT)],
  ['delete it again', del('/v2/auth/roles/nop', ROOT)],
  ['disable', del('/v2/auth/enable', ROOT)],
  ['disable again', del('/v2/auth/enable')],
  ['auth off: anyone reads', get('/v2/keys/foo/a')],
  ['auth off: anyone manages', get('/v2/auth/users/alice')],
];

const skip = hasEtcd() ? false : 'etcd not installed (/usr/bin/etcd)';

describe('v2 auth: the same requests against etcd 3.4 (v2 auth) and ours (v2 auth over v3 auth)', { skip }, () => {
  let etcd: Server;
  let ours: Server;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd({ enableV2: true }), startOurServer()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test(`${SEQUENCE.length} steps give the same status, headers and body`, async () => {
    const diffs: string[] = [];
    for (const [what, step] of SEQUENCE) {
      const want = await send(etcd.clientUrl, step);
      const got = await send(ours.clientUrl, step);
      try {
        assert.deepEqual(got, want);
      } catch {
        diffs.push(`${what}: ${step.method} ${step.path}\n  etcd: ${JSON.stringify(want)}\n  ours: ${JSON.stringify(got)}`);
      }
    }
    assert.deepEqual(diffs, []);
  });
});

// ---- real v2 clients and the cross-protocol promise, against ours only ---------------------------

/** `python3` on PATH may be a pyenv build that cannot see Debian's dist-packages: try both. */
function findPython(): string | undefined {
  for (const cand of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(cand, ['-c', 'import etcd'], { stdio: 'ignore', timeout: 10_000 });
    if (r.status === 0) return cand;
  }
  return undefined;
}

async function ok(p: Promise<EtcdctlResult>): Promise<string> {
  const r = await p;
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe('v2 auth through real clients and across protocols (ours)', { skip }, () => {
  let ours: Server;
  const v2 = (args: string[], user?: string): Promise<EtcdctlResult> =>
    etcdctl(ours.clientUrl, [...(user === undefined ? [] : ['--username', user]), ...args], { env: { ETCDCTL_API: '2' } });
  const v3 = (args: string[], user?: string): Promise<EtcdctlResult> =>
    etcdctl(ours.endpoint, [...(user === undefined ? [] : ['--user', user]), ...args]);

  before(async () => {
    ours = await startOurServer();
  });
  after(async () => {
    await ours?.stop();
  });

  test('ETCDCTL_API=2 etcdctl: user add, role add/grant, auth enable, get/set with and without credentials', async () => {
    assert.match(await ok(v2(['user', 'add', 'root:rootpw'])), /User root created/);
    assert.match(await ok(v2(['user', 'add', 'dave:pw2'])), /User dave created/);
    assert.match(await ok(v2(['role', 'add', 'app-reader'])), /Role app-reader created/);
    await ok(v2(['role', 'grant', 'app-reader', '--path', '/app/*', '--read']));
    assert.match(await ok(v2(['role', 'get', 'app-reader'])), /KV Read:\s+\/app\/\*/);
    await ok(v2(['user', 'grant', 'dave', '--roles', 'app-reader']));
    assert.match(await ok(v2(['auth', 'enable'])), /Authentication Enabled/);
    // enabling made a guest role with full access (etcd v2's rule): revoke it to lock the door
    await ok(v2(['role', 'revoke', 'guest', '--path', '/*', '--rw'], 'root:rootpw'));

    await ok(v2(['set', '/app/x', 'one'], 'root:rootpw'));
    assert.equal((await ok(v2(['get', '/app/x'], 'dave:pw2'))).trim(), 'one');
    const denied = await v2(['set', '/app/x', 'two'], 'dave:pw2');
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /110: The request requires user authentication/);
    const anonymous = await v2(['get', '/app/x']);
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stderr, /Insufficient credentials/);
    const badPassword = await v2(['get', '/app/x'], 'dave:nope');
    assert.notEqual(badPassword.code, 0);
    assert.match(badPassword.stderr, /110/);
    assert.equal((await ok(v2(['get', '/app/x'], 'root:rootpw'))).trim(), 'one');
  });

  test('python3-etcd with username and password', { skip: findPython() === undefined ? 'no python3 with the etcd module' : false }, () => {
    const script = String.raw`
import sys, etcd
port = int(sys.argv[1])
def client(**kw):
    return etcd.Client(host='127.0.0.1', port=port, protocol='http', read_timeout=10, **kw)
print('read', client(username='dave', password='pw2').read('/app/x').value)
for name, c in (('write', client(username='dave', password='pw2')), ('anonymous', client()), ('badpw', client(username='dave', password='bad'))):
    try:
        if name == 'write':
            c.write('/app/x', 'py')
        else:
            c.read('/app/x')
        print(name, 'allowed')
    except etcd.EtcdException as e:
        print(name, 'refused', (getattr(e, 'payload', None) or {}).get('errorCode'))
`;
    const r = spawnSync(findPython()!, ['-c', script, new URL(ours.clientUrl).port], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['read one', 'write refused 110', 'anonymous refused 110', 'badpw refused 110']);
  });

  test('a v3 role made with v3 etcdctl governs v2 access, and a v2 grant is a v3 permission', async () => {
    const root = 'root:rootpw';
    // v3 -> v2: a v3 user and role with READWRITE on the logical v2 range of /svc/
    await ok(v3(['user', 'add', 'erin:epw'], root));
    await ok(v3(['role', 'add', 'svc'], root));
    await ok(v3(['role', 'grant-permission', 'svc', 'readwrite', '/v2/svc/', '--prefix'], root));
    await ok(v3(['user', 'grant-role', 'erin', 'svc'], root));
    await ok(v2(['set', '/svc/a', 'v'], 'erin:epw'));
    assert.equal((await ok(v2(['get', '/svc/a'], 'erin:epw'))).trim(), 'v');
    assert.notEqual((await v2(['get', '/app/x'], 'erin:epw')).code, 0);
    // the v2 API shows the v3 permission as a v2 pattern
    assert.match(await ok(v2(['role', 'get', 'svc'], root)), /KV Read:\s+\/svc\/\*[\s\S]*KV Write:\s+\/svc\/\*/);
    // revoking it in v3 takes v2 access away at once
    await ok(v3(['role', 'revoke-permission', 'svc', '/v2/svc/', '--prefix'], root));
    assert.notEqual((await v2(['get', '/svc/a'], 'erin:epw')).code, 0);

    // v2 -> v3: the v2 grant of /app/* is a v3 prefix permission on /v2/app/
    assert.match(await ok(v3(['role', 'get', 'app-reader'], root)), /Read:\s*\n\s*\[\/v2\/app\/, \/v2\/app0\) \(prefix \/v2\/app\/\)/);
    // the v2 user is the v3 user: dave logs in over v3 too, and his permission is on the LOGICAL key
    // (/v2/app/x), not on the v2 schema's physical key (/v2/002/app/x), as the README documents
    assert.equal((await v3(['get', '/v2/app/x'], 'dave:pw2')).code, 0);
    const physical = await v3(['get', '/v2/002/app/x'], 'dave:pw2');
    assert.notEqual(physical.code, 0);
    assert.match(physical.stderr, /permission denied/);
  });
});
