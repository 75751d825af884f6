// Flags and environment, or a config file -> one validated, typed Config.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { AutoCompaction } from '../core/compactor.js';
import { join } from 'node:path';
import { checkHttp2Suites, parseCipherSuites } from '../tls/ciphers.js';
import { selfCertPaths } from '../tls/selfcert.js';
import { checkCluster, type ClusterState, type InitialMember } from './cluster.js';
import { parseConfigFile } from './file.js';
import { envName, FlagError, flagSpecs, helpText, parseBoolFlag, parseDurationMs, parseFlags, parseIntFlag, parseUrls, type FlagName } from './flags.js';

export { FlagError, helpText };

export interface Config {
  readonly name: string;
  readonly dataDir: string;
  readonly listenClientUrls: readonly URL[];
  /** TLS of the https:// client URLs (--cert-file, ...): undefined when none is https. */
  readonly clientTls: ClientTlsConfig | undefined;
  readonly advertiseClientUrls: readonly string[];
  readonly advertisePeerUrls: readonly string[];
  readonly initialClusterToken: string;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** --initial-cluster, validated (this member is in it with its advertised peer URLs). */
  readonly initialCluster: readonly InitialMember[];
  readonly initialClusterState: ClusterState;
  /**
   * --listen-peer-urls, or undefined when no peer listener is needed: a lone member of a new
   * cluster whose flag is left at its default (etcd binds :2380 anyway; not binding it lets many
   * single members share a host, and nothing would connect to it).
   */
  readonly listenPeerUrls: readonly URL[] | undefined;
  /** TLS of the peer port, server and client side (--peer-cert-file, ...): undefined when no peer URL is https. */
  readonly peerTls: PeerTlsConfig | undefined;
  readonly snapshotCatchupEntries: number;
  readonly maxTxnOps: number;
  readonly snapshotCount: number;
  readonly maxRequestBytes: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS of each gRPC connection. */
  readonly maxConcurrentStreams: number;
  /** Open v2 watches per client address (0: no limit). */
  readonly maxV2LongPollsPerClient: number;
  /** Gateway mode: bytes of v2 keyspace the v2 read mirror holds at most (0: no mirror). */
  readonly v2ReadMirrorBytes: number;
  /** Watchers per watch stream (0: no limit). */
  readonly maxWatchersPerStream: number;
  /** --quota-backend-bytes as given: 0 = etcd's default (2 GiB), negative = no quota. */
  readonly quotaBackendBytes: number;
  /** --auto-compaction-mode/-retention: undefined when the retention is 0 (off). */
  readonly autoCompaction: AutoCompaction | undefined;
  readonly watchProgressNotifyIntervalMs: number;
  readonly watchBacklogBytesMax: number;
  readonly v2Prefix: string;
  /** IPs/CIDRs whose X-Forwarded-For the request logs believe (--trusted-proxies). */
  readonly trustedProxies: readonly string[];
  readonly logLevel: string;
  readonly authToken: AuthTokenConfig;
  readonly authTokenTtlMs: number;
  /** Gateway mode (non-empty): the upstream etcd cluster's client endpoints, host:port. */
  readonly endpoints: readonly string[];
  readonly upstreamTimeoutMs: number;
  /** TLS to the upstream: file paths ('' = not given). */
  readonly upstreamTls: { readonly cacert: string; readonly cert: string; readonly key: string } | undefined;
  /** --user name:password (gateway mode). */
  readonly upstreamUser: { readonly name: string; readonly password: string } | undefined;
}

/** What the client and peer TLS have in common: file paths ('' = not given). */
export interface TlsFilesConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly trustedCaFile: string;
  /** --client-crl-file / --peer-crl-file: certificates with a serial listed there are refused. */
  readonly crlFile: string;
  /** Node's `ciphers` from --cipher-suites (undefined: Node's defaults). */
  readonly ciphers: string | undefined;
  /**
   * --auto-tls / --peer-auto-tls with no certificate given: certFile and keyFile are the
   * self-signed pair to make (or reuse) in `dir`, for these hosts (the listen URLs' hosts).
   */
  readonly selfCert: { readonly dir: string; readonly hosts: readonly string[] } | undefined;
}

/** The client port's TLS. */
export interface ClientTlsConfig extends TlsFilesConfig {
  /** --client-cert-auth: a certificate signed by the trusted CA is required; its CN names the gRPC caller. */
  readonly clientCertAuth: boolean;
  /** --client-cert-allowed-hostname ('' = any). */
  readonly allowedHostname: string;
}

/** The peer port's TLS. */
export interface PeerTlsConfig extends TlsFilesConfig {
  /** --peer-client-cert-auth: peers must present a certificate signed by the trusted CA. */
  readonly clientCertAuth: boolean;
  /** --peer-cert-allowed-cn ('' = any). */
  readonly allowedCn: string;
  /** --peer-cert-allowed-hostname ('' = any; exclusive with allowedCn). */
  readonly allowedHostname: string;
}

/** --auth-token: simple tokens, or JWTs signed with a key pair (etcd's option syntax). */
export type AuthTokenConfig =
  | { readonly kind: 'simple' }
  | { readonly kind: 'jwt'; readonly options: { readonly signMethod: string; readonly publicKeyPath: string; readonly privateKeyPath: string; readonly ttlMs: number } };

const JWT_SIGN_METHOD = /^(?:RS|PS|ES)(?:256|384|512)$/;

/** "simple" or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=5m", as etcd parses it. */
export function parseAuthToken(v: string): AuthTokenConfig {
  const [kind, ...opts] = v.split(',');
  if (kind === 'simple' && opts.length === 0) return { kind: 'simple' };
  if (kind !== 'jwt') throw new FlagError(`--auth-token: unknown token type "${kind ?? ''}" (simple or jwt)`);
  const o: Record<string, string> = {};
  for (const opt of opts) {
    const i = opt.indexOf('=');
    const name = opt.slice(0, i);
    if (i < 0 || !['pub-key', 'priv-key', 'sign-method', 'ttl'].includes(name)) throw new FlagError(`--auth-token: unknown jwt option "${opt}"`);
    o[name] = opt.slice(i + 1);
  }
  const signMethod = o['sign-method'] ?? '';
  if (!JWT_SIGN_METHOD.test(signMethod)) throw new FlagError(`--auth-token: unsupported jwt sign-method "${signMethod}" (RS256, PS256, ES256 and their 384/512 forms)`);
  if (o['pub-key'] === undefined) throw new FlagError('--auth-token: jwt needs pub-key=<path>');
  const ttlMs = o.ttl === undefined ? 5 * 60_000 : parseDurationMs('auth-token', o.ttl);
  return { kind: 'jwt', options: { signMethod, publicKeyPath: o['pub-key'], privateKeyPath: o['priv-key'] ?? '', ttlMs } };
}

export type ConfigResult =
  | { kind: 'help' }
  | { kind: 'version' }
  /** warnings: things to log once the logger exists (config-file keys that are ignored). */
  | { kind: 'run'; config: Config; warnings: readonly string[] };

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error', 'fatal']);

/**
 * argv (without node and script) and the environment -> Config. With --config-file (or
 * ETCD_CONFIG_FILE) the file is the whole configuration: like etcd 3.4, every other flag and
 * ETCD_* variable is then ignored (flags are still checked for syntax first, as etcd parses them
 * before it looks at the file).
 */
export function loadConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): ConfigResult {
  const parsed = parseFlags(argv, env);
  if (parsed.help) return { kind: 'help' };
  if (parsed.version) return { kind: 'version' };
  let v = parsed.values;
  const warnings: string[] = [];
  const file = v['config-file'];
  if (file !== '') {
    let text: string;
    try {
      text = readFile(file);
    } catch (e) {
      throw new FlagError(`config file ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const fromFile = parseConfigFile(text, file);
    const defaults = {} as Record<FlagName, string>;
    for (const name of Object.keys(flagSpecs) as FlagName[]) defaults[name] = flagSpecs[name].default;
    v = { ...defaults, ...fromFile.values, 'config-file': file };
    const overridden = [
      ...argv.filter((a) => /^--?[a-z]/.test(a) && !/^--?config-file(=|$)/.test(a)),
      ...Object.keys(env).filter((k) => k.startsWith('ETCD_') && k !== envName('config-file') && env[k] !== undefined && Object.hasOwn(flagSpecs, k.slice(5).toLowerCase().replaceAll('_', '-'))),
    ];
    if (overridden.length > 0) warnings.push(`loaded the configuration from ${file}: command-line flags and ETCD_* variables are ignored (${overridden.join(' ')})`);
    if (fromFile.ignored.length > 0) warnings.push(`config file ${file}: ignoring keys this server does not support: ${fromFile.ignored.join(', ')}`);
  }
  const listen = parseUrls('listen-client-urls', v['listen-client-urls']);
  for (const u of listen) {
    if (u.port === '') throw new FlagError(`--listen-client-urls: ${u.href}: a port is required`);
  }
  const dataDir = v['data-dir'] !== '' ? v['data-dir'] : `${v.name}.etcd`;
  const ciphers = cipherSuites(v['cipher-suites']);
  const clientTls = parseClientTls(v, listen, dataDir, ciphers?.ciphers, warnings);
  // Go's HTTP/2 server refuses to start on such a list; etcd's https client listeners serve HTTP/2.
  if (ciphers !== undefined && clientTls !== undefined) {
    try {
      checkHttp2Suites(ciphers.names);
    } catch (e) {
      throw new FlagError((e as Error).message);
    }
  }
  const progress = parseDurationMs('experimental-watch-progress-notify-interval', v['experimental-watch-progress-notify-interval']);
  if (progress < 100) throw new FlagError('--experimental-watch-progress-notify-interval must be at least 100ms');
  if (!v['v2-prefix'].startsWith('/') || v['v2-prefix'].length < 2) throw new FlagError(`--v2-prefix: "${v['v2-prefix']}" must start with "/" and name a prefix`);
  if (!LOG_LEVELS.has(v['log-level'])) throw new FlagError(`--log-level: unknown level "${v['log-level']}"`);
  const endpoints = parseEndpoints(v.endpoints);
  const upstreamTimeoutMs = parseDurationMs('upstream-timeout', v['upstream-timeout']);
  if (upstreamTimeoutMs < 1) throw new FlagError('--upstream-timeout must be positive');
  const tlsGiven = v.cacert !== '' || v.cert !== '' || v.key !== '';
  if ((v.cert === '') !== (v.key === '')) throw new FlagError('--cert and --key must be given together');
  if (tlsGiven && endpoints.length === 0) throw new FlagError('--cacert, --cert and --key need --endpoints');
  if (v.user !== '' && endpoints.length === 0) throw new FlagError('--user needs --endpoints');
  const colon = v.user.indexOf(':');
  const advertisePeerUrls = parseUrls('initial-advertise-peer-urls', v['initial-advertise-peer-urls']).map(urlString);
  const electionTimeoutMs = parseIntFlag('election-timeout', v['election-timeout'], 1);
  const heartbeatIntervalMs = parseIntFlag('heartbeat-interval', v['heartbeat-interval'], 1);
  const cluster = checkCluster({
    name: v.name, initialCluster: v['initial-cluster'], state: v['initial-cluster-state'], advertisePeerUrls,
    heartbeatMs: heartbeatIntervalMs, electionMs: electionTimeoutMs,
  });
  const listenPeer = parseUrls('listen-peer-urls', v['listen-peer-urls']);
  const peerListenerNeeded = cluster.members.length > 1 || cluster.state === 'existing' || v['listen-peer-urls'] !== flagSpecs['listen-peer-urls'].default;
  const peerTls = parsePeerTls(v, peerListenerNeeded ? listenPeer : [], [...advertisePeerUrls, ...cluster.members.flatMap((m) => m.peerUrls)], {
    dataDir, hosts: listenPeer.map(hostOf), ciphers: ciphers?.ciphers, warnings,
  });
  return {
    kind: 'run',
    config: {
      name: v.name,
      dataDir,
      listenClientUrls: listen,
      clientTls,
      advertiseClientUrls: parseUrls('advertise-client-urls', v['advertise-client-urls']).map(urlString),
      advertisePeerUrls,
      initialClusterToken: v['initial-cluster-token'],
      electionTimeoutMs,
      heartbeatIntervalMs,
      initialCluster: cluster.members,
      initialClusterState: cluster.state,
      listenPeerUrls: peerListenerNeeded ? listenPeer : undefined,
      peerTls,
      snapshotCatchupEntries: parseIntFlag('experimental-snapshot-catchup-entries', v['experimental-snapshot-catchup-entries'], 1),
      maxTxnOps: parseIntFlag('max-txn-ops', v['max-txn-ops'], 1),
      snapshotCount: parseIntFlag('snapshot-count', v['snapshot-count'], 1),
      maxRequestBytes: parseIntFlag('max-request-bytes', v['max-request-bytes'], 1),
      autoCompaction: parseAutoCompaction(v),
      maxConcurrentStreams: parseIntFlag('max-concurrent-streams', v['max-concurrent-streams'], 1),
      maxV2LongPollsPerClient: parseIntFlag('max-v2-long-polls-per-client', v['max-v2-long-polls-per-client']),
      v2ReadMirrorBytes: endpoints.length === 0 ? 0 : parseIntFlag('v2-read-mirror-bytes', v['v2-read-mirror-bytes']),
      maxWatchersPerStream: parseIntFlag('max-watchers-per-stream', v['max-watchers-per-stream']),
      quotaBackendBytes: parseIntFlag('quota-backend-bytes', v['quota-backend-bytes'], Number.MIN_SAFE_INTEGER),
      watchProgressNotifyIntervalMs: progress,
      watchBacklogBytesMax: parseIntFlag('watch-backlog-bytes-max', v['watch-backlog-bytes-max'], 1),
      v2Prefix: v['v2-prefix'],
      trustedProxies: parseTrustedProxies(v['trusted-proxies']),
      logLevel: v['log-level'],
      authToken: parseAuthToken(v['auth-token']),
      authTokenTtlMs: parseIntFlag('auth-token-ttl', v['auth-token-ttl'], 1) * 1000,
      endpoints,
      upstreamTimeoutMs,
      upstreamTls: tlsGiven ? { cacert: v.cacert, cert: v.cert, key: v.key } : undefined,
      // etcdctl's form: name:password (a name alone has an empty password here: no prompt in a server).
      upstreamUser: v.user === '' ? undefined : colon < 0 ? { name: v.user, password: '' } : { name: v.user.slice(0, colon), password: v.user.slice(colon + 1) },
    },
    warnings,
  };
}

/**
 * etcd 3.4's reading of --auto-compaction-retention: a bare non-negative integer is hours
 * (periodic) or revisions (revision), anything else a Go duration; 0 turns compaction off.
 */
function parseAutoCompaction(v: Record<FlagName, string>): AutoCompaction | undefined {
  const mode = v['auto-compaction-mode'];
  if (mode !== 'periodic' && mode !== 'revision') throw new FlagError(`unknown auto-compaction-mode "${mode}"`); // etcd 3.4's words
  const raw = v['auto-compaction-retention'];
  const n = /^\d+$/.test(raw) ? Number(raw) : undefined;
  if (mode === 'revision') {
    if (n === undefined) {
      // etcd takes a duration here too and then keeps that many nanoseconds' worth of revisions: refuse instead.
      throw new FlagError(`invalid value "${raw}" for flag --auto-compaction-retention: revision mode takes a number of revisions`);
    }
    return n === 0 ? undefined : { mode, retention: n, checkIntervalMs: parseDurationMs('auto-compaction-check-interval', v['auto-compaction-check-interval']) };
  }
  const retentionMs = n !== undefined ? n * 3_600_000 : parseDurationMs('auto-compaction-retention', raw);
  return retentionMs === 0 ? undefined : { mode, retentionMs };
}

/** --cipher-suites: Go's names checked and mapped (an unknown name stops the start, as etcd 3.4, TLS or not). */
function cipherSuites(v: string): ReturnType<typeof parseCipherSuites> {
  try {
    return parseCipherSuites(v);
  } catch (e) {
    throw new FlagError((e as Error).message);
  }
}

/** A URL's host as it goes into a certificate (no brackets around IPv6). */
function hostOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

/**
 * --auto-tls and --peer-auto-tls as etcd 3.4's embed.Config applies them: only when neither a
 * certificate nor a key is given (else a warning, in etcd's words), and then the TLS settings are
 * the self-signed pair alone: the trusted CA, client certificate auth and the CRL are dropped
 * (etcd replaces its whole TLSInfo), and peers dialing with it skip verification.
 */
function autoTls(
  on: boolean, certFile: string, keyFile: string, dir: string, hosts: readonly string[], warnings: string[], side: 'client' | 'peer',
): TlsFilesConfig['selfCert'] {
  if (!on) return undefined;
  if (certFile !== '' || keyFile !== '') {
    warnings.push(`ignoring ${side} auto TLS since certs given`);
    return undefined;
  }
  return { dir, hosts: [...new Set(hosts)] };
}

/** --cert-file and friends: checked as etcd 3.4 checks them (an https:// URL needs a cert and a key, or --auto-tls). */
function parseClientTls(v: Record<FlagName, string>, listen: readonly URL[], dataDir: string, ciphers: string | undefined, warnings: string[]): ClientTlsConfig | undefined {
  const clientCertAuth = parseBoolFlag('client-cert-auth', v['client-cert-auth']);
  const auto = parseBoolFlag('auto-tls', v['auto-tls']);
  const https = listen.find((u) => u.protocol === 'https:');
  if (https === undefined) return undefined;
  const selfCert = autoTls(auto, v['cert-file'], v['key-file'], join(dataDir, 'fixtures', 'client'), listen.map(hostOf), warnings, 'client');
  if (selfCert !== undefined) {
    return { ...selfCertPaths(selfCert.dir), trustedCaFile: '', clientCertAuth: false, allowedHostname: '', crlFile: '', ciphers, selfCert };
  }
  if (v['cert-file'] === '' || v['key-file'] === '') {
    // etcd 3.4's words for the same mistake.
    throw new FlagError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${urlString(https)} with HTTPS scheme`);
  }
  return {
    certFile: v['cert-file'], keyFile: v['key-file'], trustedCaFile: v['trusted-ca-file'], clientCertAuth,
    allowedHostname: v['client-cert-allowed-hostname'], crlFile: v['client-crl-file'], ciphers, selfCert: undefined,
  };
}

/**
 * --peer-cert-file and friends. An https:// listener without a cert and key (and no
 * --peer-auto-tls) fails as etcd 3.4's listener does (its words). The TLS settings are kept when
 * any peer URL (listened on, advertised or in --initial-cluster) is https: this member dials
 * https peers with them too.
 */
function parsePeerTls(
  v: Record<FlagName, string>, listen: readonly URL[], peerUrls: readonly string[],
  o: { dataDir: string; hosts: readonly string[]; ciphers: string | undefined; warnings: string[] },
): PeerTlsConfig | undefined {
  const clientCertAuth = parseBoolFlag('peer-client-cert-auth', v['peer-client-cert-auth']);
  const auto = parseBoolFlag('peer-auto-tls', v['peer-auto-tls']);
  const https = listen.find((u) => u.protocol === 'https:');
  if (https === undefined && !peerUrls.some((u) => u.startsWith('https:'))) {
    if ((v['peer-cert-file'] === '') !== (v['peer-key-file'] === '')) throw new FlagError('--peer-cert-file and --peer-key-file must be given together');
    return undefined;
  }
  const selfCert = autoTls(auto, v['peer-cert-file'], v['peer-key-file'], join(o.dataDir, 'fixtures', 'peer'), o.hosts, o.warnings, 'peer');
  if (selfCert !== undefined) {
    return { ...selfCertPaths(selfCert.dir), trustedCaFile: '', clientCertAuth: false, allowedCn: '', allowedHostname: '', crlFile: '', ciphers: o.ciphers, selfCert };
  }
  if (https !== undefined && (v['peer-cert-file'] === '' || v['peer-key-file'] === '')) {
    throw new FlagError(`cannot listen on TLS for ${https.host}: KeyFile and CertFile are not presented`);
  }
  if ((v['peer-cert-file'] === '') !== (v['peer-key-file'] === '')) throw new FlagError('--peer-cert-file and --peer-key-file must be given together');
  const allowedCn = v['peer-cert-allowed-cn'];
  const allowedHostname = v['peer-cert-allowed-hostname'];
  if (allowedCn !== '' && allowedHostname !== '') {
    // etcd 3.4's words (its peer listener refuses to start).
    throw new FlagError(`AllowedCN and AllowedHostname are mutually exclusive (cn=${JSON.stringify(allowedCn)}, hostname=${JSON.stringify(allowedHostname)})`);
  }
  return {
    certFile: v['peer-cert-file'], keyFile: v['peer-key-file'], trustedCaFile: v['peer-trusted-ca-file'],
    clientCertAuth, allowedCn, allowedHostname, crlFile: v['peer-crl-file'], ciphers: o.ciphers, selfCert: undefined,
  };
}

/** "10.0.0.1, 192.168.0.0/16, ::1" -> validated entries (what Fastify's trustProxy takes). */
function parseTrustedProxies(v: string): string[] {
  if (v.trim() === '') return [];
  return v.split(',').map((raw) => {
    const s = raw.trim();
    const [addr = '', bits, extra] = s.split('/');
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    const ok = family !== 0 && extra === undefined && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
    if (!ok) throw new FlagError(`invalid value "${v}" for flag --trusted-proxies: "${s}" is not an IP address or CIDR`);
    return s;
  });
}

/** etcdctl's --endpoints form: host:port (an http:// or https:// prefix is accepted and dropped). */
function parseEndpoints(v: string): string[] {
  if (v.trim() === '') return [];
  return v.split(',').map((raw) => {
    const s = raw.trim().replace(/^(https?|dns):\/\//, '').replace(/\/$/, '');
    if (!/^[^\s/:]+:\d{1,5}$/.test(s) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(s)) {
      throw new FlagError(`invalid value "${v}" for flag --endpoints: "${raw}" is not host:port`);
    }
    return s;
  });
}

/** etcd prints URLs without a trailing slash: http://127.0.0.1:2379 */
function urlString(u: URL): string {
  return u.href.replace(/\/$/, '');
}

