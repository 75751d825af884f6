// `etcd-gateway migrate --from <etcd> --to <ours>`: copies a live etcd v2 store into this server's
// v2 keyspace through both servers' v2 keys APIs. The I/O half: HTTP (undici), the clock, retries,
// bounded concurrency and the terminal; every decision is in migrate-plan.ts.
//
// Order of writes: directories level by level (a parent exists before its children, so a TTL
// directory gets its TTL from its own create instead of being created implicitly without one),
// then every key. Each node is created with prevExist=false, so a node that exists in the target
// is never overwritten silently: the target's node is read and outcomeFor() decides (same value:
// unchanged; directory over directory: merged; otherwise a conflict, or with --overwrite a
// replaced value). That also makes a re-run after a partial failure idempotent.
import { Agent, Pool, request, type Dispatcher } from 'undici';
import { FlagError } from '../config/index.js';
import { errCode } from '../util/err-code.js';
import {
  emptyTally, flattenV2, keysUrlPath, outcomeFor, parseMigrateArgs, planMigration, predictOutcomes, progressText,
  remainingTtlS, summaryLine, tallyDone, writeForm, type MigrateOptions, type Outcome, type Plan, type SourceNode,
  type Tally, type TargetNode,
} from './migrate-plan.js';

export interface MigrateIo {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream & { isTTY?: boolean };
}

const ATTEMPTS_MAX = 5;
const RETRY_BASE_MS = 100;
const REQUEST_TIMEOUT_MS = 30_000;
/** A recursive GET of a big store is one answer: allow it time. */
const READ_TIMEOUT_MS = 300_000;
const TTY_REDRAW_MS = 100;
const LOG_EVERY_MS = 2_000;
/** Conflict and error lines printed in full; the rest are only counted. */
const REPORT_LINES_MAX = 100;

/** Network failures worth another attempt; an HTTP answer (any status) is never retried. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

function describe(e: unknown): string {
  const code = errCode(e);
  const msg = e instanceof Error && e.message !== '' ? e.message : String(e);
  return code !== undefined && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const code = errCode(e);
      if (attempt >= ATTEMPTS_MAX || code === undefined || !TRANSIENT_CODES.has(code)) throw e;
      await sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
    }
  }
}

interface Reply {
  readonly status: number;
  readonly json: unknown;
}

async function call(d: Dispatcher, origin: URL, method: 'GET' | 'PUT', path: string, form?: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Reply> {
  return withRetry(async () => {
    const res = await request(new URL(path, origin), {
      dispatcher: d, method, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      ...(form !== undefined ? { body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json };
  });
}

function v2ErrorCode(r: Reply): number | undefined {
  const c = (r.json as { errorCode?: unknown } | undefined)?.errorCode;
  return typeof c === 'number' ? c : undefined;
}

function v2Message(r: Reply): string {
  const j = r.json as { errorCode?: unknown; message?: unknown; cause?: unknown } | undefined;
  if (j !== undefined && typeof j.message === 'string') {
    return `${String(j.errorCode ?? r.status)} ${j.message}${typeof j.cause === 'string' ? ` (${j.cause})` : ''}`;
  }
  return `HTTP ${r.status}`;
}

/** Reads a subtree of a v2 store (recursive, sorted); [] when the path does not exist. */
async function readTree(d: Dispatcher, origin: URL, path: string, what: string): Promise<SourceNode[]> {
  let r: Reply;
  try {
    r = await call(d, origin, 'GET', `${keysUrlPath(path === '/' ? '' : path)}?recursive=true&sorted=true`, undefined, READ_TIMEOUT_MS);
  } catch (e) {
    throw new Error(`cannot read ${what} ${origin.origin}: ${describe(e)}`);
  }
  if (r.status === 404 && v2ErrorCode(r) === 100) return [];
  if (r.status === 404) throw new Error(`${what} ${origin.origin} does not serve the v2 keys API (HTTP 404; start etcd 3.4 with --enable-v2)`);
  if (r.status !== 200) throw new Error(`cannot read ${what} ${origin.origin}${path}: ${v2Message(r)}`);
  const node = (r.json as { node?: unknown } | undefined)?.node;
  if (node === undefined) throw new Error(`${what} ${origin.origin}: the answer has no "node"`);
  return flattenV2(node);
}

/** Runs fn over items with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

class Progress {
  private lastDraw = 0;
  constructor(private readonly io: MigrateIo, private readonly total: number, private readonly startMs: number) {}

  tick(done: number, force = false): void {
    const now = Date.now();
    const tty = this.io.err.isTTY === true;
    if (!force && now - this.lastDraw < (tty ? TTY_REDRAW_MS : LOG_EVERY_MS)) return;
    this.lastDraw = now;
    const text = progressText(done, this.total, (now - this.startMs) / 1000, tty);
    this.io.err.write(tty ? `\r${text}` : `${text}\n`);
  }

  finish(done: number): void {
    if (this.io.err.isTTY === true) {
      this.tick(done, true);
      this.io.err.write('\n');
    }
  }
}

class Reporter {
  private printed = 0;
  private hidden = 0;
  constructor(private readonly io: MigrateIo) {}

  line(kind: 'conflict' | 'error', path: string, why: string): void {
    if (this.printed >= REPORT_LINES_MAX) {
      this.hidden++;
      return;
    }
    this.printed++;
    // A TTY line may hold a progress bar: start on a fresh line.
    this.io.err.write(`${this.io.err.isTTY === true ? '\r\x1b[K' : ''}${kind}: ${path}: ${why}\n`);
  }

  finish(): void {
    if (this.hidden > 0) this.io.err.write(`(${this.hidden} more conflict/error lines not shown)\n`);
  }
}

interface Run {
  readonly opts: MigrateOptions;
  readonly target: Dispatcher;
  readonly readAtMs: number;
  readonly tally: Tally;
  readonly report: Reporter;
}

async function targetNode(run: Run, path: string): Promise<TargetNode | undefined> {
  const r = await call(run.target, run.opts.to, 'GET', keysUrlPath(path));
  if (r.status === 404 && v2ErrorCode(r) === 100) return undefined;
  const n = (r.json as { node?: { dir?: unknown; value?: unknown } } | undefined)?.node;
  if (r.status !== 200 || n === undefined) throw new Error(`reading the target's node failed: ${v2Message(r)}`);
  return n.dir === true ? { dir: true } : { dir: false, value: typeof n.value === 'string' ? n.value : '' };
}

function count(run: Run, o: Outcome | 'expired' | 'error', path: string, why = ''): void {
  const t = run.tally;
  switch (o) {
    case 'create': t.created++; break;
    case 'unchanged': t.unchanged++; break;
    case 'merge': t.merged++; break;
    case 'overwrite': t.overwritten++; break;
    case 'expired': t.expired++; break;
    case 'conflict': t.conflicts++; run.report.line('conflict', path, why); break;
    case 'error': t.errors++; run.report.line('error', path, why); break;
  }
}

/** The TTL to write now, or 'expired'; undefined for a permanent node. */
function ttlNow(run: Run, n: SourceNode): number | 'expired' | undefined {
  if (n.ttlS === undefined) return undefined;
  const s = remainingTtlS(n.ttlS, Date.now() - run.readAtMs);
  return s > 0 ? s : 'expired';
}

async function copyNode(run: Run, n: SourceNode): Promise<void> {
  try {
    let ttl = ttlNow(run, n);
    if (ttl === 'expired') return count(run, 'expired', n.path);
    const created = await call(run.target, run.opts.to, 'PUT', keysUrlPath(n.path), writeForm(n, 'create', ttl));
    if (created.status === 201) return count(run, 'create', n.path);
    const code = v2ErrorCode(created);
    // 104: a parent path is a key in the target; 102: the source's key is a directory there.
    if (code === 104 || code === 102) return count(run, 'conflict', n.path, v2Message(created));
    if (code !== 105) return count(run, 'error', n.path, v2Message(created));
    const existing = await targetNode(run, n.path);
    if (existing === undefined) return count(run, 'error', n.path, 'reported as existing, then not found (written concurrently?)');
    const o = outcomeFor(n, existing, run.opts.overwrite);
    switch (o) {
      case 'create': // not reachable with a node there; outcomeFor says create only for nothing
      case 'unchanged':
        return count(run, o, n.path);
      case 'conflict':
        return count(run, o, n.path, existing.dir ? 'a directory is there' : n.dir ? 'a key is there' : 'a key with another value is there (--overwrite replaces it)');
      case 'merge':
        // --overwrite also gives a merged directory the source's TTL (or none).
        if (!run.opts.overwrite) return count(run, o, n.path);
        break;
      case 'overwrite':
        break;
    }
    ttl = ttlNow(run, n);
    if (ttl === 'expired') return count(run, 'expired', n.path);
    const r = await call(run.target, run.opts.to, 'PUT', keysUrlPath(n.path), writeForm(n, n.dir ? 'dirTtl' : 'overwrite', ttl));
    if (r.status === 200 || r.status === 201) return count(run, o, n.path);
    return count(run, 'error', n.path, v2Message(r));
  } catch (e) {
    return count(run, 'error', n.path, describe(e));
  }
}

async function readSource(opts: MigrateOptions, d: Dispatcher): Promise<SourceNode[][]> {
  const trees = [await readTree(d, opts.from, opts.prefix, 'the source')];
  for (const p of opts.include) trees.push(await readTree(d, opts.from, p, 'the source'));
  return trees;
}

function dryRun(plan: Plan, target: SourceNode[], opts: MigrateOptions, report: Reporter): Tally {
  const t = emptyTally();
  for (const [path, o] of predictOutcomes(plan, target, opts.overwrite)) {
    switch (o) {
      case 'create': t.created++; break;
      case 'unchanged': t.unchanged++; break;
      case 'merge': t.merged++; break;
      case 'overwrite': t.overwritten++; break;
      case 'conflict': t.conflicts++; report.line('conflict', path, 'the target holds something else there'); break;
    }
  }
  report.finish();
  return t;
}

/** Runs the command; resolves to the exit status (0 all copied, 1 something not copied, 2 usage). */
export async function migrateCommand(argv: readonly string[], io: MigrateIo = { out: process.stdout, err: process.stderr }): Promise<number> {
  let opts: MigrateOptions;
  try {
    opts = parseMigrateArgs(argv);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.err.write(`etcd-gateway ${e.message}\n`);
    return 2;
  }
  const startMs = Date.now();
  const source = new Agent({ connections: 2 });
  const target = new Pool(opts.to.origin, { connections: opts.concurrency, pipelining: 1 });
  try {
    // TTLs count down from before the read: a written TTL can come out a little short, never long.
    const readAtMs = Date.now();
    const plan = planMigration(await readSource(opts, source));
    if (opts.dryRun) {
      const there: SourceNode[] = [];
      for (const p of [opts.prefix, ...opts.include]) there.push(...(await readTree(target, opts.to, p, 'the target')));
      const t = dryRun(plan, there, opts, new Reporter(io));
      io.out.write(summaryLine(plan, t, (Date.now() - startMs) / 1000, true) + '\n');
      return t.conflicts > 0 ? 1 : 0;
    }
    // Fail fast with one clear line when the target is unreachable or not a v2 server (rather than
    // one error per node): read a hidden path nobody lists; "not found" is the expected answer.
    await readTree(target, opts.to, '/_etcd_gateway_migrate_probe', 'the target');
    const run: Run = { opts, target, readAtMs, tally: emptyTally(), report: new Reporter(io) };
    const progress = new Progress(io, plan.total, startMs);
    const step = async (n: SourceNode): Promise<void> => {
      await copyNode(run, n);
      progress.tick(tallyDone(run.tally));
    };
    for (const level of plan.dirLevels) await pool(level, opts.concurrency, step);
    await pool(plan.keys, opts.concurrency, step);
    progress.finish(tallyDone(run.tally));
    run.report.finish();
    const t = run.tally;
    io.out.write(summaryLine(plan, t, (Date.now() - startMs) / 1000, false) + '\n');
    return t.errors > 0 || t.conflicts > 0 ? 1 : 0;
  } catch (e) {
    io.err.write(`etcd-gateway migrate: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}
