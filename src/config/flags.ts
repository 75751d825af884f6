// Command-line flags with etcd's names, each also settable as ETCD_<NAME> in the environment
// (flags win). One table: parsing, --help and validation all read it.

/** list: comma-separated on the command line, a list of strings in the config file (Go's []string). */
export type FlagKind = 'string' | 'urls' | 'int' | 'bool' | 'duration' | 'list';

export interface FlagSpec {
  readonly kind: FlagKind;
  readonly default: string;
  readonly help: string;
}

export const flagSpecs = {
  'config-file': { kind: 'string', default: '', help: 'Path to the server configuration file (etcd\'s YAML keys). When given, the other command-line flags and ETCD_* variables are ignored, as in etcd.' },
  'name': { kind: 'string', default: 'default', help: 'Human-readable name for this member.' },
  'data-dir': { kind: 'string', default: '', help: 'Path to the data directory (default "${name}.etcd").' },
  'listen-client-urls': { kind: 'urls', default: 'http://localhost:2379', help: 'List of URLs to listen on for client traffic (gRPC, v3 JSON gateway and HTTP on each).' },
  'advertise-client-urls': { kind: 'urls', default: 'http://localhost:2379', help: 'List of this member\'s client URLs to advertise to the rest of the cluster.' },
  'initial-advertise-peer-urls': { kind: 'urls', default: 'http://localhost:2380', help: 'List of this member\'s peer URLs to advertise (also derives the member ID, as etcd).' },
  'initial-cluster-token': { kind: 'string', default: 'etcd-cluster', help: 'Initial cluster token (derives the member and cluster IDs, as etcd).' },
  'listen-peer-urls': { kind: 'urls', default: 'http://localhost:2380', help: 'List of URLs to listen on for peer traffic (bound when the cluster has other members, when this member joins one, or when given explicitly).' },
  'initial-cluster': { kind: 'string', default: '', help: 'Initial cluster configuration for bootstrapping: name=peer-url,... (default: --name=--initial-advertise-peer-urls).' },
  'initial-cluster-state': { kind: 'string', default: 'new', help: 'Initial cluster state (\'new\' or \'existing\': join a running cluster that already added this member).' },
  'heartbeat-interval': { kind: 'int', default: '100', help: 'Time (in milliseconds) of a heartbeat interval (the raft tick).' },
  'election-timeout': { kind: 'int', default: '1000', help: 'Time (in milliseconds) for an election to timeout; the minimum lease TTL is 1.5x this.' },
  'snapshot-count': { kind: 'int', default: '10000', help: 'Number of committed transactions to trigger a snapshot to disk (older WAL segments are then deleted).' },
  'experimental-snapshot-catchup-entries': { kind: 'int', default: '5000', help: 'Number of entries kept in memory after a snapshot for slow followers to catch up by log (further behind: they get a snapshot).' },
  'max-txn-ops': { kind: 'int', default: '128', help: 'Maximum number of operations permitted in a transaction.' },
  'max-request-bytes': { kind: 'int', default: '1572864', help: 'Maximum client request size in bytes the server will accept.' },
  'experimental-watch-progress-notify-interval': { kind: 'duration', default: '10m', help: 'Duration of periodic watch progress notifications.' },
  'watch-backlog-bytes-max': { kind: 'int', default: '67108864', help: 'Unread watch response bytes a stream may buffer before its watchers are canceled (not an etcd flag).' },
  'v2-prefix': { kind: 'string', default: '/v2', help: 'v3 key prefix under which the v2 keys API stores its keyspace (see src/v2/keys.ts).' },
  'trusted-proxies': { kind: 'string', default: '', help: 'Comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For is believed in request logs (not an etcd flag).' },
  'endpoints': { kind: 'string', default: '', help: 'Gateway mode: comma-separated host:port client endpoints of a real etcd v3 cluster to serve from (no local store).' },
  'upstream-timeout': { kind: 'duration', default: '5s', help: 'Gateway mode: deadline of one request to the upstream cluster, retries included.' },
  'cacert': { kind: 'string', default: '', help: 'Gateway mode: CA bundle that verifies the upstream members\' TLS certificates (enables TLS).' },
  'cert': { kind: 'string', default: '', help: 'Gateway mode: client certificate presented to the upstream members.' },
  'key': { kind: 'string', default: '', help: 'Gateway mode: private key of --cert.' },
  'v2-read-mirror-bytes': { kind: 'int', default: '268435456', help: 'Gateway mode: v2 GETs without quorum=true are answered from an in-memory copy of the v2 keyspace that one upstream watch keeps current, while it costs at most this many bytes (keys, values and 512 per key; 0: off, every GET reads the upstream; not an etcd flag).' },
  'user': { kind: 'string', default: '', help: 'Gateway mode: username[:password] the gateway authenticates as for requests that carry no token of their own.' },
  'cert-file': { kind: 'string', default: '', help: 'Path to the client server TLS cert file (needed by https:// client URLs).' },
  'key-file': { kind: 'string', default: '', help: 'Path to the client server TLS key file.' },
  'trusted-ca-file': { kind: 'string', default: '', help: 'Path to the client server TLS trusted CA cert file (verifies client certificates with --client-cert-auth).' },
  'client-cert-auth': { kind: 'bool', default: 'false', help: 'Enable client cert authentication: https:// client URLs require a certificate signed by --trusted-ca-file; its Common Name is the gRPC caller when auth is enabled and no token is given.' },
  'auto-tls': { kind: 'bool', default: 'false', help: 'Client TLS using generated certificates: https:// client URLs without --cert-file/--key-file get a self-signed certificate (made once under <data-dir>/fixtures/client); --trusted-ca-file, --client-cert-auth and --client-crl-file are then not used, as in etcd.' },
  'client-cert-allowed-hostname': { kind: 'string', default: '', help: 'Allowed TLS hostname for client cert authentication (with --client-cert-auth: a client certificate not valid for this hostname is refused).' },
  'client-crl-file': { kind: 'string', default: '', help: 'Path to the client certificate revocation list (PEM or DER): a connection presenting a certificate whose serial number it lists is closed after the handshake; re-read when the file changes.' },
  'peer-cert-file': { kind: 'string', default: '', help: 'Path to the peer server TLS cert file (needed by https:// peer URLs; also the client certificate this member presents to its peers).' },
  'peer-key-file': { kind: 'string', default: '', help: 'Path to the peer server TLS key file.' },
  'peer-trusted-ca-file': { kind: 'string', default: '', help: 'Path to the peer server TLS trusted CA file (verifies the other members\' server and client certificates).' },
  'peer-client-cert-auth': { kind: 'bool', default: 'false', help: 'Enable peer client cert authentication: https:// peer listeners require a certificate signed by --peer-trusted-ca-file.' },
  'peer-cert-allowed-hostname': { kind: 'string', default: '', help: 'Allowed TLS hostname for inter peer authentication (with --peer-client-cert-auth: a peer certificate not valid for this hostname is refused).' },
  'peer-cert-allowed-cn': { kind: 'string', default: '', help: 'Allowed CN for inter peer authentication (with --peer-client-cert-auth: a peer certificate with another Common Name is refused).' },
  'peer-auto-tls': { kind: 'bool', default: 'false', help: 'Peer TLS using generated certificates: https:// peer URLs without --peer-cert-file/--peer-key-file get a self-signed certificate (made once under <data-dir>/fixtures/peer) and peer certificates are not verified, as in etcd.' },
  'peer-crl-file': { kind: 'string', default: '', help: 'Path to the peer certificate revocation list (PEM or DER): a peer presenting a certificate whose serial number it lists is cut off after the handshake; re-read when the file changes.' },
  'cipher-suites': { kind: 'list', default: '', help: 'Comma-separated list of supported TLS 1.2 cipher suites (Go names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) between client/server and peers (empty: Node\'s defaults). TLS 1.3 suites are not configurable, as in etcd 3.4.' },
  'quota-backend-bytes': { kind: 'int', default: '0', help: 'Raise the NOSPACE alarm and refuse writes when the backend\'s live pages would reach this many bytes (0: 2 GiB, negative: no quota).' },
  'auto-compaction-mode': { kind: 'string', default: 'periodic', help: 'Interpret \'auto-compaction-retention\' one of: periodic|revision. \'periodic\' for duration based retention (e.g. \'5m\'), \'revision\' for revision number based retention.' },
  'auto-compaction-retention': { kind: 'string', default: '0', help: 'Auto compaction retention for mvcc key value store: a duration (\'1h\', \'30m\'; a bare number is hours) in periodic mode, a revision count in revision mode. 0 means disable auto compaction.' },
  'auto-compaction-check-interval': { kind: 'duration', default: '5m', help: 'How often revision mode checks the revision (not an etcd flag: etcd fixes it at 5m).' },
  'max-concurrent-streams': { kind: 'int', default: '4294967295', help: 'Maximum concurrent streams that each client can open at a time (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of gRPC connections; etcd 3.5\'s flag).' },
  'max-v2-long-polls-per-client': { kind: 'int', default: '0', help: 'v2 watches (?wait=true, long polls and streams) one client address may hold open; past it 429 (not an etcd flag; 0: no limit, as etcd).' },
  'max-watchers-per-stream': { kind: 'int', default: '0', help: 'Watchers one watch stream (gRPC Watch call, /v3/watch request) may hold; a create past it is canceled with a reason (not an etcd flag; 0: no limit, as etcd).' },
  'log-level': { kind: 'string', default: 'info', help: 'Log level: debug, info, warn, error, fatal.' },
  'auth-token': { kind: 'string', default: 'simple', help: 'Auth token type: simple, or jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|ES256|...>[,ttl=<duration>].' },
  'auth-token-ttl': { kind: 'int', default: '300', help: 'Time (in seconds) of the simple auth token\'s life without use.' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof flagSpecs;

export class FlagError extends Error {}

export function envName(flag: string): string {
  return 'ETCD_' + flag.toUpperCase().replaceAll('-', '_');
}

export interface ParsedFlags {
  readonly values: Record<FlagName, string>;
  readonly help: boolean;
  readonly version: boolean;
}

function isFlag(name: string): name is FlagName {
  return Object.hasOwn(flagSpecs, name);
}

/** Parses argv (without node and script) and the environment into raw flag strings. */
export function parseFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParsedFlags {
  const values = {} as Record<FlagName, string>;
  for (const name of Object.keys(flagSpecs) as FlagName[]) {
    values[name] = env[envName(name)] ?? flagSpecs[name].default;
  }
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (arg === '--version') { version = true; continue; }
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) throw new FlagError(`unexpected argument "${arg}"`);
    const name = m[1]!;
    if (!isFlag(name)) throw new FlagError(`unknown flag: --${name}`);
    let value = m[2];
    if (value === undefined) {
      if ((flagSpecs[name] as FlagSpec).kind === 'bool') value = 'true';
      else {
        value = argv[++i];
        if (value === undefined) throw new FlagError(`flag needs an argument: --${name}`);
      }
    }
    values[name] = value;
  }
  return { values, help, version };
}

export function parseIntFlag(name: FlagName, v: string, min = 0): number {
  if (!/^-?\d+$/.test(v)) throw new FlagError(`invalid value "${v}" for flag --${name}: not an integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new FlagError(`invalid value "${v}" for flag --${name}: must be >= ${min}`);
  return n;
}

/** Go's strconv.ParseBool, which its flag package uses: 1, t, T, TRUE, true, True and the false forms. */
export function parseBoolFlag(name: FlagName, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new FlagError(`invalid boolean value "${v}" for -${name}: parse error`);
}

/** Go-style durations: "10m", "1.5s", "100ms", "1h30m". */
export function parseDurationMs(name: FlagName, v: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    matched = re.lastIndex;
  }
  if (v.length === 0 || matched !== v.length) throw new FlagError(`invalid value "${v}" for flag --${name}: not a duration`);
  return total;
}

export function parseUrls(name: FlagName, v: string): URL[] {
  return v.split(',').map((s) => {
    let u: URL;
    try {
      u = new URL(s.trim());
    } catch {
      throw new FlagError(`invalid value "${v}" for flag --${name}: "${s}" is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new FlagError(`invalid value "${v}" for flag --${name}: URL scheme must be http or https`);
    }
    return u;
  });
}

export function helpText(): string {
  const lines = ['Usage: etcd-gateway [flags]', '', 'Flags (each also settable as ETCD_<FLAG_NAME>):'];
  for (const [name, spec] of Object.entries(flagSpecs) as [string, FlagSpec][]) {
    lines.push(`  --${name}${spec.default !== '' ? ` (default "${spec.default}")` : ''}`, `      ${spec.help}`);
  }
  lines.push('  --help', '      Show this help.', '  --version', '      Print the version and exit.');
  lines.push('', 'Subcommands:',
    '  snapshot restore <file> --data-dir <dir> [--initial-cluster-token <token>]',
    '      Build a new data dir (a new cluster) from a file saved with `etcdctl snapshot save`.',
    '  migrate --from <etcd v2 URL> --to <our URL> [--prefix /p] [--include /path]... [--overwrite] [--dry-run]',
    '      Copy a live etcd v2 store (keys, directories, TTLs) into this server\'s v2 keyspace.');
  return lines.join('\n');
}
