// The pure half of `etcd-gateway migrate`: command-line parsing, turning a v2 recursive GET answer
// into a write plan, deciding what each node's outcome is when the target already holds something
// at its path, the remaining TTL of a node at write time, and the progress/summary texts. No I/O
// here: src/cli/migrate.ts does the HTTP and the clock, so all of this is testable with values.
import { FlagError } from '../config/index.js';

export interface MigrateOptions {
  readonly from: URL;
  readonly to: URL;
  /** v2 path of the subtree to copy ("/" = everything). */
  readonly prefix: string;
  /** Hidden subtrees (a path component starting with "_") to copy too: recursive GETs skip them. */
  readonly include: readonly string[];
  readonly dryRun: boolean;
  /** Replace a key whose value differs in the target (default: report it as a conflict). */
  readonly overwrite: boolean;
  /** Writes in flight at once. */
  readonly concurrency: number;
}

export const MIGRATE_USAGE = `usage: etcd-gateway migrate --from <etcd client URL> --to <our client URL>
    [--prefix /path] [--include /hidden/path]... [--overwrite] [--dry-run] [--concurrency N]
Copies a live etcd v2 store (read through its v2 keys API) into this server's v2 keyspace.`;

const CONCURRENCY_MAX = 256;

function parseBaseUrl(flag: string, v: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new FlagError(`invalid value "${v}" for --${flag}: not a URL (want e.g. http://127.0.0.1:2379)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FlagError(`invalid value "${v}" for --${flag}: URL scheme must be http or https`);
  if (u.search !== '' || u.hash !== '' || (u.pathname !== '/' && u.pathname !== '')) {
    throw new FlagError(`invalid value "${v}" for --${flag}: give the client URL only (scheme, host, port), without a path or query`);
  }
  return u;
}

/** "/a//b/" -> "/a/b"; the v2 path the user means (etcd cleans paths the same way). */
export function cleanV2Path(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  return '/' + parts.join('/');
}

export function parseMigrateArgs(argv: readonly string[]): MigrateOptions {
  let from: URL | undefined;
  let to: URL | undefined;
  let prefix = '/';
  const include: string[] = [];
  let dryRun = false;
  let overwrite = false;
  let concurrency = 32;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) throw new FlagError(`migrate: unexpected argument "${arg}"\n${MIGRATE_USAGE}`);
    const name = m[1]!;
    if (name === 'dry-run' || name === 'overwrite') {
      if (m[2] !== undefined && m[2] !== 'true' && m[2] !== 'false') throw new FlagError(`migrate: --${name} takes no value`);
      const on = m[2] !== 'false';
      if (name === 'dry-run') dryRun = on;
      else overwrite = on;
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new FlagError(`migrate: flag needs an argument: --${name}`);
    switch (name) {
      case 'from': from = parseBaseUrl(name, value); break;
      case 'to': to = parseBaseUrl(name, value); break;
      case 'prefix': prefix = cleanV2Path(value); break;
      case 'include': include.push(cleanV2Path(value)); break;
      case 'concurrency': {
        const n = Number(value);
        if (!/^\d+$/.test(value) || n < 1 || n > CONCURRENCY_MAX) throw new FlagError(`migrate: invalid value "${value}" for --concurrency: want 1..${CONCURRENCY_MAX}`);
        concurrency = n;
        break;
      }
      default: throw new FlagError(`migrate: unknown flag --${name}\n${MIGRATE_USAGE}`);
    }
  }
  if (from === undefined || to === undefined) throw new FlagError(`migrate: --from and --to are required\n${MIGRATE_USAGE}`);
  for (const p of include) {
    if (p !== prefix && !p.startsWith(prefix === '/' ? '/' : prefix + '/')) throw new FlagError(`migrate: --include ${p} is outside --prefix ${prefix}`);
  }
  return { from, to, prefix, include, dryRun, overwrite, concurrency };
}

// ---- the source tree ------------------------------------------------------------------------

/** One node of the source store, flattened. `ttlS` is the remaining TTL the source reported. */
export interface SourceNode {
  readonly path: string;
  readonly dir: boolean;
  /** "" for directories. */
  readonly value: string;
  readonly ttlS?: number;
}

function bad(what: string): never {
  throw new Error(`unexpected v2 answer from the source: ${what}`);
}

/**
 * Flattens the `node` of a v2 GET answer (recursive) into a list in tree order (a directory
 * before its children). The store's root ("/" without a key) is not a node to copy.
 */
export function flattenV2(node: unknown): SourceNode[] {
  const out: SourceNode[] = [];
  const walk = (n: unknown): void => {
    if (typeof n !== 'object' || n === null) bad('a node is not an object');
    const o = n as Record<string, unknown>;
    const key = o.key;
    const dir = o.dir === true;
    if (key !== undefined && typeof key !== 'string') bad('"key" is not a string');
    if (typeof key === 'string' && key !== '/' && key !== '') {
      const ttl = o.ttl;
      if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl))) bad(`"ttl" of ${key} is not an integer`);
      const value = dir ? '' : o.value;
      if (typeof value !== 'string') bad(`"value" of ${key} is not a string`);
      // etcd omits ttl when the remaining time is 0 but still prints expiration: that node is due.
      const ttlS = typeof ttl === 'number' ? ttl : o.expiration !== undefined ? 0 : undefined;
      out.push(ttlS === undefined ? { path: key, dir, value } : { path: key, dir, value, ttlS });
    }
    if (o.nodes !== undefined) {
      if (!Array.isArray(o.nodes)) bad('"nodes" is not an array');
      for (const c of o.nodes) walk(c);
    }
  };
  walk(node);
  return out;
}

export function depthOf(path: string): number {
  let d = 0;
  for (const c of path) if (c === '/') d++;
  return d;
}

export interface Plan {
  /** Directories grouped by depth, shallowest first: a level is written only after its parents. */
  readonly dirLevels: readonly (readonly SourceNode[])[];
  readonly keys: readonly SourceNode[];
  readonly total: number;
  readonly counts: { readonly keys: number; readonly dirs: number; readonly emptyDirs: number; readonly ttlNodes: number };
}

/** Merges the fetched subtrees (prefix + includes; duplicates dropped) into one write plan. */
export function planMigration(trees: readonly (readonly SourceNode[])[]): Plan {
  const byPath = new Map<string, SourceNode>();
  for (const t of trees) for (const n of t) if (!byPath.has(n.path)) byPath.set(n.path, n);
  const nodes = [...byPath.values()];
  const hasChild = new Set<string>();
  for (const n of nodes) hasChild.add(n.path.slice(0, n.path.lastIndexOf('/')));
  const levels = new Map<number, SourceNode[]>();
  const keys: SourceNode[] = [];
  let emptyDirs = 0;
  let ttlNodes = 0;
  for (const n of nodes) {
    if (n.ttlS !== undefined) ttlNodes++;
    if (!n.dir) {
      keys.push(n);
      continue;
    }
    if (!hasChild.has(n.path)) emptyDirs++;
    const d = depthOf(n.path);
    let l = levels.get(d);
    if (l === undefined) levels.set(d, (l = []));
    l.push(n);
  }
  const dirLevels = [...levels.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l);
  const dirs = nodes.length - keys.length;
  return { dirLevels, keys, total: nodes.length, counts: { keys: keys.length, dirs, emptyDirs, ttlNodes } };
}

/**
 * The TTL to write, in whole seconds, for a node whose TTL the source reported `ttlS` seconds
 * before `elapsedMs` ago; <= 0 means it has expired meanwhile and is not copied. Counting from
 * the moment of our read (not from the source's `expiration`) keeps clock skew between the
 * machines out of it; v2 TTLs are whole seconds and etcd rounds the remaining time up.
 */
export function remainingTtlS(ttlS: number, elapsedMs: number): number {
  return Math.ceil((ttlS * 1000 - elapsedMs) / 1000);
}

// ---- what to do when the target has something at the path ----------------------------------

export type TargetNode = { readonly dir: true } | { readonly dir: false; readonly value: string };

export type Outcome =
  | 'create'      // nothing there: create it
  | 'unchanged'   // the same key with the same value is there (a re-run, or a retried create)
  | 'merge'       // a directory is there: keep it, copy the children into it
  | 'overwrite'   // a key with another value is there and --overwrite: replace the value
  | 'conflict';   // left alone and reported

/** One rule for the dry run's prediction and the live run's answer to "already exists". */
export function outcomeFor(src: SourceNode, target: TargetNode | undefined, overwrite: boolean): Outcome {
  if (target === undefined) return 'create';
  if (src.dir) return target.dir ? 'merge' : 'conflict';
  if (target.dir) return 'conflict';
  if (target.value === src.value) return 'unchanged';
  return overwrite ? 'overwrite' : 'conflict';
}

/** Dry run: the outcome of every node against a flattened target tree. */
export function predictOutcomes(plan: Plan, target: readonly SourceNode[], overwrite: boolean): Map<string, Outcome> {
  const t = new Map<string, TargetNode>();
  for (const n of target) t.set(n.path, n.dir ? { dir: true } : { dir: false, value: n.value });
  const out = new Map<string, Outcome>();
  for (const n of [...plan.dirLevels.flat(), ...plan.keys]) {
    // A key in the target where the source has an ancestor directory blocks the whole subtree.
    let blocked = false;
    for (let i = n.path.indexOf('/', 1); i > 0; i = n.path.indexOf('/', i + 1)) {
      const a = t.get(n.path.slice(0, i));
      if (a !== undefined && !a.dir) blocked = true;
    }
    out.set(n.path, blocked ? 'conflict' : outcomeFor(n, t.get(n.path), overwrite));
  }
  return out;
}

// ---- requests ------------------------------------------------------------------------------

/** "/a b/ü" -> "/v2/keys/a%20b/%C3%BC": each segment percent-encoded, the slashes kept. */
export function keysUrlPath(path: string): string {
  return '/v2/keys' + path.split('/').map(encodeURIComponent).join('/');
}

/**
 * The form body of a write. `create` fails with 105 when anything exists (prevExist=false), so
 * nothing is overwritten by accident; `overwrite` sets a key (prevExist=true: only a key that is
 * still there); `dirTtl` puts the source's TTL on a directory that already existed.
 */
export function writeForm(src: SourceNode, mode: 'create' | 'overwrite' | 'dirTtl', ttlS: number | undefined): string {
  const f = new URLSearchParams();
  if (src.dir) f.set('dir', 'true');
  else f.set('value', src.value);
  f.set('prevExist', mode === 'create' ? 'false' : 'true');
  // An empty ttl removes a TTL: an overwritten key or a merged directory ends up as in the source.
  if (ttlS !== undefined) f.set('ttl', String(ttlS));
  else if (mode !== 'create') f.set('ttl', '');
  return f.toString();
}

// ---- texts ---------------------------------------------------------------------------------

export interface Tally {
  created: number;
  unchanged: number;
  merged: number;
  overwritten: number;
  conflicts: number;
  expired: number;
  errors: number;
}

export function emptyTally(): Tally {
  return { created: 0, unchanged: 0, merged: 0, overwritten: 0, conflicts: 0, expired: 0, errors: 0 };
}

export function tallyDone(t: Tally): number {
  return t.created + t.unchanged + t.merged + t.overwritten + t.conflicts + t.expired + t.errors;
}

/** The last line the command prints (stdout); scripts and the test read it. */
export function summaryLine(plan: Plan, t: Tally, seconds: number, dryRun: boolean): string {
  const c = plan.counts;
  const verb = dryRun ? 'dry run, would be' : 'done';
  return `migrate ${verb}: ${c.keys} keys, ${c.dirs} dirs (${c.emptyDirs} empty), ${c.ttlNodes} with TTL; ` +
    `created ${t.created}, unchanged ${t.unchanged}, merged dirs ${t.merged}, overwritten ${t.overwritten}, ` +
    `conflicts ${t.conflicts}, expired ${t.expired}, errors ${t.errors}; ${seconds.toFixed(1)} s`;
}

const BAR_WIDTH = 30;

/** One progress line: a bar for a terminal (redrawn with \r), plain text for a log. */
export function progressText(done: number, total: number, seconds: number, tty: boolean): string {
  const frac = total === 0 ? 1 : done / total;
  const pct = Math.floor(frac * 100);
  if (!tty) return `migrate: ${done}/${total} nodes (${pct}%), ${seconds.toFixed(1)} s`;
  const fill = Math.round(frac * BAR_WIDTH);
  return `[${'#'.repeat(fill)}${'.'.repeat(BAR_WIDTH - fill)}] ${done}/${total} ${pct}% ${seconds.toFixed(1)} s`;
}
