// Flags and ETCD_* environment variables as etcd names them; bad input is a clear error.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { FlagError, loadConfig } from '../../src/config/index.js';
import { OUR_MAIN } from '../helpers/procs.js';

function run(argv: string[], env: Record<string, string> = {}) {
  const r = loadConfig(argv, env);
  assert.equal(r.kind, 'run');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

test('defaults are etcd\'s', () => {
  const c = run([]);
  assert.equal(c.name, 'default');
  assert.equal(c.dataDir, 'default.etcd');
  assert.deepEqual(c.listenClientUrls.map(String), ['http://localhost:2379/']);
  assert.deepEqual(c.advertiseClientUrls, ['http://localhost:2379']);
  assert.equal(c.maxTxnOps, 128);
  assert.equal(c.maxRequestBytes, 1572864);
  assert.equal(c.watchProgressNotifyIntervalMs, 600_000);
});

const cases: { name: string; argv: string[]; env?: Record<string, string>; check: (c: ReturnType<typeof run>) => void }[] = [
  { name: '--flag=value', argv: ['--name=n1'], check: (c) => { assert.equal(c.name, 'n1'); assert.equal(c.dataDir, 'n1.etcd'); } },
  { name: '--flag value', argv: ['--data-dir', '/d'], check: (c) => assert.equal(c.dataDir, '/d') },
  { name: 'single dash', argv: ['-max-txn-ops=7'], check: (c) => assert.equal(c.maxTxnOps, 7) },
  { name: 'ETCD_ env', argv: [], env: { ETCD_MAX_REQUEST_BYTES: '100' }, check: (c) => assert.equal(c.maxRequestBytes, 100) },
  { name: 'flag wins over env', argv: ['--name', 'f'], env: { ETCD_NAME: 'e' }, check: (c) => assert.equal(c.name, 'f') },
  { name: 'url lists', argv: ['--listen-client-urls', 'http://127.0.0.1:1,http://127.0.0.1:2'], check: (c) => assert.equal(c.listenClientUrls.length, 2) },
  { name: 'durations', argv: ['--experimental-watch-progress-notify-interval=1m30s'], check: (c) => assert.equal(c.watchProgressNotifyIntervalMs, 90_000) },
  { name: 'auth token defaults', argv: [], check: (c) => { assert.deepEqual(c.authToken, { kind: 'simple' }); assert.equal(c.authTokenTtlMs, 300_000); } },
  { name: '--auth-token-ttl', argv: ['--auth-token-ttl=30'], check: (c) => assert.equal(c.authTokenTtlMs, 30_000) },
  {
    name: '--auth-token jwt',
    argv: ['--auth-token', 'jwt,pub-key=/k/pub.pem,priv-key=/k/priv.pem,sign-method=ES256,ttl=10m'],
    check: (c) => assert.deepEqual(c.authToken, { kind: 'jwt', options: { signMethod: 'ES256', publicKeyPath: '/k/pub.pem', privateKeyPath: '/k/priv.pem', ttlMs: 600_000 } }),
  },
  {
    name: '--auth-token jwt without a private key (verify only), default ttl',
    argv: ['--auth-token=jwt,pub-key=/k/pub.pem,sign-method=RS256'],
    check: (c) => assert.deepEqual(c.authToken, { kind: 'jwt', options: { signMethod: 'RS256', publicKeyPath: '/k/pub.pem', privateKeyPath: '', ttlMs: 300_000 } }),
  },
];
for (const c of cases) test(`flags: ${c.name}`, () => c.check(run(c.argv, c.env)));

const bad: [string, string[], RegExp][] = [
  ['unknown flag', ['--no-such-flag=1'], /unknown flag: --no-such-flag/],
  ['missing value', ['--name'], /flag needs an argument: --name/],
  ['not an integer', ['--max-txn-ops=many'], /not an integer/],
  ['not a duration', ['--experimental-watch-progress-notify-interval=soon'], /not a duration/],
  ['too short an interval', ['--experimental-watch-progress-notify-interval=10ms'], /at least 100ms/],
  ['bad url', ['--listen-client-urls=nope'], /not a URL/],
  ['url without port', ['--listen-client-urls=http://127.0.0.1'], /a port is required/],
  ['stray argument', ['serve'], /unexpected argument/],
  ['unknown token type', ['--auth-token=magic'], /unknown token type "magic"/],
  ['unknown jwt option', ['--auth-token=jwt,pub-key=/p,sign-method=RS256,color=red'], /unknown jwt option "color=red"/],
  ['unsupported jwt sign method', ['--auth-token=jwt,pub-key=/p,sign-method=HS256'], /unsupported jwt sign-method "HS256"/],
  ['jwt without a public key', ['--auth-token=jwt,sign-method=RS256'], /needs pub-key/],
  ['zero token ttl', ['--auth-token-ttl=0'], /must be >= 1/],
];
for (const [name, argv, re] of bad) {
  test(`flags: ${name} is an error`, () => assert.throws(() => loadConfig(argv, {}), (e: Error) => e instanceof FlagError && re.test(e.message)));
}

test('the binary exits 2 with a clear message on a bad flag, and --help lists the flags', () => {
  const r = spawnSync(process.execPath, [OUR_MAIN, '--bogus'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown flag: --bogus/);
  const help = execFileSync(process.execPath, [OUR_MAIN, '--help'], { encoding: 'utf8' });
  for (const f of ['--name', '--data-dir', '--listen-client-urls', '--max-request-bytes']) assert.ok(help.includes(f), f);
});
