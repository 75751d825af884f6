// Flags and environment -> one validated, typed Config.
import { FlagError, helpText, parseDurationMs, parseFlags, parseIntFlag, parseUrls } from './flags.js';

export { FlagError, helpText };

export interface Config {
  readonly name: string;
  readonly dataDir: string;
  readonly listenClientUrls: readonly URL[];
  readonly advertiseClientUrls: readonly string[];
  readonly advertisePeerUrls: readonly string[];
  readonly initialClusterToken: string;
  readonly electionTimeoutMs: number;
  readonly maxTxnOps: number;
  readonly maxRequestBytes: number;
  readonly watchProgressNotifyIntervalMs: number;
  readonly watchBacklogBytesMax: number;
  readonly v2Prefix: string;
  readonly logLevel: string;
  /** Gateway mode (non-empty): the upstream etcd cluster's client endpoints, host:port. */
  readonly endpoints: readonly string[];
  readonly upstreamTimeoutMs: number;
  /** TLS to the upstream: file paths ('' = not given). */
  readonly upstreamTls: { readonly cacert: string; readonly cert: string; readonly key: string } | undefined;
  /** --user name:password (gateway mode). */
  readonly upstreamUser: { readonly name: string; readonly password: string } | undefined;
}

export type ConfigResult = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: Config };

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error', 'fatal']);

export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const { values: v, help, version } = parseFlags(argv, env);
  if (help) return { kind: 'help' };
  if (version) return { kind: 'version' };
  const listen = parseUrls('listen-client-urls', v['listen-client-urls']);
  for (const u of listen) {
    if (u.protocol !== 'http:') throw new FlagError(`--listen-client-urls: ${u.href}: TLS listeners are not supported yet`);
    if (u.port === '') throw new FlagError(`--listen-client-urls: ${u.href}: a port is required`);
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
  return {
    kind: 'run',
    config: {
      name: v.name,
      dataDir: v['data-dir'] !== '' ? v['data-dir'] : `${v.name}.etcd`,
      listenClientUrls: listen,
      advertiseClientUrls: parseUrls('advertise-client-urls', v['advertise-client-urls']).map(urlString),
      advertisePeerUrls: parseUrls('initial-advertise-peer-urls', v['initial-advertise-peer-urls']).map(urlString),
      initialClusterToken: v['initial-cluster-token'],
      electionTimeoutMs: parseIntFlag('election-timeout', v['election-timeout'], 1),
      maxTxnOps: parseIntFlag('max-txn-ops', v['max-txn-ops'], 1),
      maxRequestBytes: parseIntFlag('max-request-bytes', v['max-request-bytes'], 1),
      watchProgressNotifyIntervalMs: progress,
      watchBacklogBytesMax: parseIntFlag('watch-backlog-bytes-max', v['watch-backlog-bytes-max'], 1),
      v2Prefix: v['v2-prefix'],
      logLevel: v['log-level'],
      endpoints,
      upstreamTimeoutMs,
      upstreamTls: tlsGiven ? { cacert: v.cacert, cert: v.cert, key: v.key } : undefined,
      // etcdctl's form: name:password (a name alone has an empty password here: no prompt in a server).
      upstreamUser: v.user === '' ? undefined : colon < 0 ? { name: v.user, password: '' } : { name: v.user.slice(0, colon), password: v.user.slice(colon + 1) },
    },
  };
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

