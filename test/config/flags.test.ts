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

// --- --config-file: etcd 3.4's YAML file (checked against etcd 3.4.23: the file wins over flags
// and ETCD_* variables, unknown keys are ignored, a type mismatch or bad YAML stops the start) ---

const SAMPLE = `# the keys of etcd.conf.yml.sample that this server uses, plus some it does not
name: 'file-node'
data-dir: /var/lib/file.etcd
listen-client-urls: http://127.0.0.1:4001,http://127.0.0.1:4002
advertise-client-urls: http://10.0.0.1:2379
initial-advertise-peer-urls: http://10.0.0.1:2380
initial-cluster-token: 'tok'
election-timeout: 2000
max-txn-ops: 64
max-request-bytes: 1000
experimental-watch-progress-notify-interval: 90000000000
log-level: warn
trusted-proxies: 10.0.0.0/8
max-snapshots: 5
snapshot-count: 10000
client-transport-security:
  client-cert-auth: true
  cert-file: /etc/etcd/server.pem
  key-file: /etc/etcd/server.key
  trusted-ca-file: /etc/etcd/ca.pem
  auto-tls: false
  crl-file: /etc/etcd/crl.pem
`;

function fromFile(text: string, argv: string[] = [], env: Record<string, string> = {}) {
  const r = loadConfig(['--config-file', 'etcd.yml', ...argv], env, (p) => {
    assert.equal(p, 'etcd.yml');
    return text;
  });
  assert.equal(r.kind, 'run');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r;
}

const fileCases: { name: string; text: string; argv?: string[]; env?: Record<string, string>; check: (r: ReturnType<typeof fromFile>) => void }[] = [
  {
    name: 'every supported key is read with etcd\'s types',
    text: SAMPLE,
    check: ({ config: c }) => {
      assert.equal(c.name, 'file-node');
      assert.equal(c.dataDir, '/var/lib/file.etcd');
      assert.deepEqual(c.listenClientUrls.map(String), ['http://127.0.0.1:4001/', 'http://127.0.0.1:4002/']);
      assert.deepEqual(c.advertiseClientUrls, ['http://10.0.0.1:2379']);
      assert.deepEqual(c.advertisePeerUrls, ['http://10.0.0.1:2380']);
      assert.equal(c.initialClusterToken, 'tok');
      assert.equal(c.electionTimeoutMs, 2000);
      assert.equal(c.maxTxnOps, 64);
      assert.equal(c.maxRequestBytes, 1000);
      assert.equal(c.watchProgressNotifyIntervalMs, 90_000, 'durations are Go nanoseconds');
      assert.equal(c.logLevel, 'warn');
      assert.deepEqual(c.trustedProxies, ['10.0.0.0/8']);
    },
  },
  {
    name: 'unknown and unsupported keys are ignored with a warning',
    text: SAMPLE,
    check: ({ warnings }) => assert.deepEqual(warnings, ['config file etcd.yml: ignoring keys this server does not support: max-snapshots, client-transport-security.crl-file']),
  },
  {
    name: 'client-transport-security maps onto the client TLS flags (used by https:// URLs)',
    text: `${SAMPLE}listen-client-urls: https://127.0.0.1:2379\n`.replace(/^listen-client-urls: http:.*\n/m, ''),
    check: ({ config: c }) => assert.deepEqual(c.clientTls, { certFile: '/etc/etcd/server.pem', keyFile: '/etc/etcd/server.key', trustedCaFile: '/etc/etcd/ca.pem', clientCertAuth: true, allowedHostname: '', crlFile: '', ciphers: undefined, selfCert: undefined }),
  },
  {
    name: 'peer-transport-security maps onto the --peer-* TLS flags (used by https:// peer URLs)',
    text: 'name: a\nlisten-peer-urls: https://127.0.0.1:2380\ninitial-advertise-peer-urls: https://127.0.0.1:2380\ninitial-cluster: a=https://127.0.0.1:2380\n'
      + 'peer-cert-allowed-cn: m\npeer-transport-security:\n  cert-file: /p.pem\n  key-file: /p.key\n  trusted-ca-file: /ca.pem\n  client-cert-auth: true\n  auto-tls: false\n  crl-file: /p.crl\n',
    check: ({ config: c, warnings }) => {
      assert.deepEqual(c.peerTls, { certFile: '/p.pem', keyFile: '/p.key', trustedCaFile: '/ca.pem', clientCertAuth: true, allowedCn: 'm', allowedHostname: '', crlFile: '', ciphers: undefined, selfCert: undefined });
      assert.deepEqual(warnings, ['config file etcd.yml: ignoring keys this server does not support: peer-transport-security.crl-file']);
    },
  },
  {
    name: 'flags and ETCD_* variables are ignored when a file is given (defaults fill the rest)',
    text: 'name: f\n',
    argv: ['--max-txn-ops=7', '--name', 'flag'],
    env: { ETCD_MAX_REQUEST_BYTES: '100', ETCD_NAME: 'env' },
    check: ({ config: c, warnings }) => {
      assert.equal(c.name, 'f');
      assert.equal(c.dataDir, 'f.etcd');
      assert.equal(c.maxTxnOps, 128);
      assert.equal(c.maxRequestBytes, 1572864);
      assert.match(warnings[0]!, /command-line flags and ETCD_\* variables are ignored \(--max-txn-ops=7 --name ETCD_MAX_REQUEST_BYTES ETCD_NAME\)/);
    },
  },
  { name: 'an empty file means every default', text: '', check: ({ config: c }) => assert.equal(c.name, 'default') },
  { name: 'a key without a value keeps its default', text: 'name:\nmax-txn-ops: 3\n', check: ({ config: c }) => { assert.equal(c.name, 'default'); assert.equal(c.maxTxnOps, 3); } },
];
for (const c of fileCases) test(`config file: ${c.name}`, () => c.check(fromFile(c.text, c.argv, c.env)));

test('config file: ETCD_CONFIG_FILE names the file too', () => {
  const r = loadConfig([], { ETCD_CONFIG_FILE: 'x.yml', ETCD_NAME: 'env' }, () => 'name: x\n');
  assert.equal(r.kind === 'run' && r.config.name, 'x');
});

const badFiles: [string, string, RegExp][] = [
  ['a string where etcd wants an integer', 'max-txn-ops: abc\n', /config file etcd.yml: max-txn-ops: cannot unmarshal string into an integer/],
  ['a duration written the flag way', 'experimental-watch-progress-notify-interval: 10m\n', /cannot unmarshal string into a duration \(integer nanoseconds\)/],
  ['a number where etcd wants a string', 'name: 12\n', /name: cannot unmarshal number into a string/],
  ['bad YAML', 'name: [unclosed\n', /config file etcd.yml: invalid YAML/],
  ['a list at the top', '- a\n- b\n', /top level must be a mapping/],
  ['a duplicate key', 'name: a\nname: b\n', /invalid YAML/],
  ['a bad URL', 'listen-client-urls: notaurl\n', /--listen-client-urls: "notaurl" is not a URL/],
  ['a bad proxy', 'trusted-proxies: 10.0.0.0/99\n', /--trusted-proxies: "10.0.0.0\/99" is not an IP address or CIDR/],
];
for (const [name, text, re] of badFiles) {
  test(`config file: ${name} is an error`, () => assert.throws(() => fromFile(text), (e: Error) => e instanceof FlagError && re.test(e.message)));
}

test('config file: a missing file is an error; a bad flag is still an error with a file', () => {
  assert.throws(() => loadConfig(['--config-file=/nonexistent/etcd.yml'], {}), /config file \/nonexistent\/etcd.yml: ENOENT/);
  assert.throws(() => loadConfig(['--config-file=x.yml', '--bogus'], {}, () => ''), /unknown flag: --bogus/);
});

test('--trusted-proxies takes IPs and CIDRs of both families', () => {
  assert.deepEqual(run(['--trusted-proxies', '127.0.0.1, 10.0.0.0/8,::1,fd00::/8']).trustedProxies, ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  assert.deepEqual(run([]).trustedProxies, []);
  assert.throws(() => loadConfig(['--trusted-proxies=proxy.local'], {}), /"proxy.local" is not an IP address or CIDR/);
});

test('the binary: --help lists every flag, --version prints versions, a bad config file exits 2 with the reason', async () => {
  const { flagSpecs } = await import('../../src/config/flags.js');
  const help = execFileSync(process.execPath, [OUR_MAIN, '--help'], { encoding: 'utf8' });
  for (const f of Object.keys(flagSpecs)) assert.ok(help.includes(`--${f}`), `--help lists --${f}`);
  assert.match(help, /snapshot restore <file>/);
  assert.match(help, /migrate --from/);
  const version = execFileSync(process.execPath, [OUR_MAIN, '--version'], { encoding: 'utf8' });
  assert.match(version, /^etcd-gateway Version: .+\netcd API Version: 3\.4\.\d+\n/);
  const r = spawnSync(process.execPath, [OUR_MAIN, '--config-file', '/nonexistent/etcd.yml'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /config file \/nonexistent\/etcd.yml: ENOENT/);
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
