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

test('gateway mode flags: --endpoints (etcdctl form), --upstream-timeout, TLS files', () => {
  assert.deepEqual(run([]).endpoints, []);
  const c = run(['--endpoints', 'http://127.0.0.1:2379, 10.0.0.2:2379,[::1]:2379', '--upstream-timeout', '1.5s', '--cacert', 'ca.pem']);
  assert.deepEqual(c.endpoints, ['127.0.0.1:2379', '10.0.0.2:2379', '[::1]:2379']);
  assert.equal(c.upstreamTimeoutMs, 1500);
  assert.deepEqual(c.upstreamTls, { cacert: 'ca.pem', cert: '', key: '' });
  assert.equal(run([], { ETCD_ENDPOINTS: 'h:1' }).endpoints[0], 'h:1');
  assert.equal(run([]).upstreamTimeoutMs, 5000);
  assert.deepEqual(run(['--endpoints', 'h:1', '--user', 'root:p:w']).upstreamUser, { name: 'root', password: 'p:w' });
  assert.equal(run([]).upstreamUser, undefined);
  for (const [argv, re] of [
    [['--endpoints', 'nohost'], /--endpoints: "nohost" is not host:port/],
    [['--endpoints', 'h:1', '--cert', 'c.pem'], /--cert and --key must be given together/],
    [['--cacert', 'ca.pem'], /need --endpoints/],
    [['--upstream-timeout', '0s'], /must be positive/],
    [['--user', 'root:pw'], /--user needs --endpoints/],
  ] as const) {
    assert.throws(() => loadConfig([...argv], {}), (e: Error) => e instanceof FlagError && re.test(e.message));
  }
});
