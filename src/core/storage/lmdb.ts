// The only lmdb import: MVCC records by revision key, metadata and lease records in one LMDB
// environment. A commit's promise resolves once it is committed (visible, crash-consistent:
// overlappingSync on, LMDB syncs in the background); `flushed()` resolves once everything
// committed is on disk. Durability of acknowledged writes comes from the WAL in front (node.ts):
// after a crash the WAL replays what the last flush did not hold. Staged writes are visible to
// reads through an overlay until their commit lands.
import { open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecord, parseRevKey, recordSize, revKey, writeRecord, type DecodedRecord } from '../mvcc/record.js';
import type { MvccStorage, StorageOp } from '../mvcc/storage.js';

/** Records up to this size are encoded for LMDB in one reused buffer. */
const SCRATCH_BYTES = 64 * 1024;

/**
 * Under load, an LMDB commit starts at most this often (etcd's backend batch interval is 100 ms):
 * each commit costs a sync of the data file, and those syncs slow the WAL's fdatasyncs that every
 * write waits for. An idle store commits at once.
 */
export const COMMIT_INTERVAL_MS = 100;
/** Staged bytes (keys and values) or writes that start the next commit without waiting out the interval. */
const COMMIT_NOW_BYTES = 16 * 2 ** 20;
const COMMIT_NOW_OPS = 10_000;

/** LMDB's map size: the most the data file can grow to (--quota-backend-bytes refuses writes well before). */
const MAP_SIZE_BYTES = 64 * 2 ** 30;

/**
 * lmdb rejects a failed commit with a generic "Commit failed" whose `commitError` is a second
 * promise, rejected with the I/O error itself (EIO, ENOSPC). Unhandled, that second rejection
 * would end the process; handled here, its text becomes the failure's.
 */
async function commitFailure(e: unknown): Promise<Error> {
  const second = (e as { commitError?: unknown } | null)?.commitError;
  if (second instanceof Promise) {
    // lmdb rejects it right after the commit's own rejection; should it never settle, the
    // generic error stands after a moment.
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([second, new Promise((res) => { timer = setTimeout(res, 1000); })]);
    } catch (cause) {
      return new Error(`LMDB commit failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    } finally {
      clearTimeout(timer);
    }
  }
  return e instanceof Error ? e : new Error(String(e));
}

export class LmdbStorage implements MvccStorage {
  readonly mapSizeBytes = MAP_SIZE_BYTES;
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly records: Database<Buffer, Buffer>;
  private readonly meta: Database<Buffer, string>;
  private readonly leases: Database<Buffer, Buffer>;
  /** Record and lease writes in stage order; each record carries its key, encoded once. */
  private staged: StagedOp[] = [];
  /** The staged writes of commits started and not landed yet (oldest first). */
  private landing: StagedOp[][] = [];
  /**
   * The overlay: records of `landing` and of `staged` up to `indexedStaged`, by latin1 revision
   * key (a null record = deleted). Made on the first read that needs it and dropped when a commit
   * starts or lands: writes only append to `staged`, reads of uncommitted history are rare.
   */
  private overlayIndex: Map<string, StagedRecord> | undefined;
  private indexedStaged = 0;
  /**
   * The first failed commit. No commit lands after it: a later one carries a newer consistent
   * index, and over the failed commit's records (lost with it) the WAL replay at the next start
   * would then skip them. Everything applied since the last good commit stays in the WAL.
   */
  private failure: Error | undefined;
  /**
   * Metadata staged since the last commit, by name: only the newest value of a name reaches LMDB
   * (the current revision and the consistent index change on every apply, and a batch of N puts
   * would otherwise write each of them N times).
   */
  private stagedMeta = new Map<string, Buffer | null>();
  readonly path: string;
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** The LMDB transaction running, and the commit that will take what is staged meanwhile (commit()). */
  private runningCommit: Promise<void> | undefined;
  private nextCommit: Promise<void> | undefined;
  /** Starts the next commit (once the running one has landed); set while nextCommit waits. */
  private startNext: (() => void) | undefined;
  private nextTimer: NodeJS.Timeout | undefined;
  private lastStartMs = -Infinity;
  /** What is staged for the next commit: key and value bytes, and writes. */
  private stagedBytes = 0;
  /** Key and value bytes of the commit running. */
  private inFlightBytes = 0;

  /**
   * onCommitSeconds: called with each commit's latency (enqueue to durable, fsync included);
   * commitIntervalMs: how often a commit may start under load (tests lengthen it).
   */
  constructor(dir: string, private readonly onCommitSeconds?: (seconds: number) => void, private readonly commitIntervalMs = COMMIT_INTERVAL_MS) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'member', 'snap');
    mkdirSync(this.path, { recursive: true });
    this.root = open<Buffer, Buffer>({
      path: join(this.path, 'db'),
      noSubdir: true,
      overlappingSync: true,
      // With event-turn batching lmdb starts each batch with a commit promise of its own that no
      // caller holds: a commit failing on a full or failing disk rejects it unhandled, which ends
      // the process. Without it, commits are still grouped (one setImmediate per batch) and every
      // commit promise is ours (commit() below), so the failure becomes an answer, not a crash.
      eventTurnBatching: false,
      maxDbs: 8,
      mapSize: MAP_SIZE_BYTES,
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    this.records = this.root.openDB<Buffer, Buffer>({ name: 'key', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = this.root.openDB<Buffer, string>({ name: 'meta', keyEncoding: 'ordered-binary', encoding: 'binary' });
    this.leases = this.root.openDB<Buffer, Buffer>({ name: 'lease', keyEncoding: 'binary', encoding: 'binary' });
  }

  /** The overlay (see overlayIndex), brought up to date; undefined when nothing is uncommitted. */
  private overlay(): Map<string, StagedRecord> | undefined {
    if (this.staged.length === 0 && this.landing.length === 0) return undefined;
    let index = this.overlayIndex;
    if (index === undefined) {
      index = this.overlayIndex = new Map();
      this.indexedStaged = 0;
      for (const ops of this.landing) for (const op of ops) if (op.t === 'staged') index.set(op.key.toString('latin1'), op);
    }
    for (; this.indexedStaged < this.staged.length; this.indexedStaged++) {
      const op = this.staged[this.indexedStaged]!;
      if (op.t === 'staged') index.set(op.key.toString('latin1'), op);
    }
    return index;
  }

  getRecord(main: number, sub: number): Buffer | undefined {
    const k = revKey(main, sub);
    const staged = this.overlay()?.get(k.toString('latin1'));
    if (staged !== undefined) return staged.record === null ? undefined : encodeRecord(staged.record.kv, staged.record.tombstone);
    return this.records.getBinary(k) ?? undefined;
  }

  /**
   * Committed records, then staged ones (the overlay): a write is answered once applied, before
   * its batch's LMDB commit, so a watcher's catch-up must see it too. Staged records are newer than
   * every committed one (revisions only grow), except those of a commit that landed but whose
   * overlay entries are not dropped yet: those are skipped by their key. A staged null is a record
   * compaction removed.
   */
  *scanRecords(fromMain: number, toMain: number): Iterable<{ main: number; sub: number; value: Buffer }> {
    let last: Buffer | undefined;
    for (const { key, value } of this.records.getRange({ start: revKey(fromMain, 0), end: revKey(toMain, 0) })) {
      if (this.overlay()?.get(key.toString('latin1'))?.record === null) continue;
      const { main, sub } = parseRevKey(key);
      last = key;
      yield { main, sub, value: Buffer.from(value) };
    }
    const overlay = this.overlay();
    if (overlay === undefined) return;
    for (const rec of overlay.values()) {
      if (rec.record === null || rec.main < fromMain || rec.main >= toMain) continue;
      if (last !== undefined && Buffer.compare(rec.key, last) <= 0) continue;
      yield { main: rec.main, sub: rec.sub, value: encodeRecord(rec.record.kv, rec.record.tombstone) };
    }
  }

  getMeta(name: string): Buffer | undefined {
    return this.meta.getBinary(name) ?? undefined;
  }

  *scanLeases(): Iterable<{ id: bigint; value: Buffer }> {
    for (const { key, value } of this.leases.getRange({})) {
      yield { id: key.readBigInt64BE(0), value: Buffer.from(value) };
    }
  }

  stage(op: StorageOp): void {
    switch (op.t) {
      case 'rec': {
        const key = revKey(op.main, op.sub);
        this.staged.push({ t: 'staged', key, main: op.main, sub: op.sub, record: op.record });
        if (op.record !== null) this.stagedBytes += op.record.kv.key.length + op.record.kv.value.length;
        break;
      }
      case 'meta':
        this.stagedMeta.set(op.name, op.value);
        break;
      case 'lease':
        this.staged.push(op);
        break;
    }
  }

  /**
   * A record's bytes for a putSync, which copies them into LMDB at once: small ones are written
   * into one reused scratch buffer, big ones into a buffer of their own that is garbage right
   * after. The store stages key-values, not encoded records, so no second copy of every value
   * waits in memory for its commit.
   */
  private encodeForPut(r: DecodedRecord): Buffer {
    const size = recordSize(r.kv);
    if (size > SCRATCH_BYTES) return encodeRecord(r.kv, r.tombstone);
    return writeRecord(r.kv, r.tombstone, this.scratch);
  }

  /**
   * Commits everything staged so far. At most one LMDB transaction runs at a time, and under load
   * one starts at most every COMMIT_INTERVAL_MS: a commit asked for while one runs, or sooner
   * after the last one started, is folded into the next, which takes everything staged by then
   * (sooner when COMMIT_NOW_BYTES or COMMIT_NOW_OPS are staged). Each LMDB commit costs a
   * background sync of the data file; one per applied batch (~700/s under a put load) doubled the
   * WAL's fdatasync time, and one whenever the last had landed (~350/s) still did; spaced, they
   * are as few as etcd's backend commits. Nobody answers a client after a commit: writes are
   * durable in the WAL and answered at apply (reads see staged writes through the overlay).
   */
  commit(): Promise<void> {
    const wait = this.lastStartMs + this.commitIntervalMs - performance.now();
    if (this.nextCommit === undefined) {
      if (this.runningCommit === undefined && wait <= 0) return this.startCommit();
      this.nextCommit = new Promise<void>((res) => (this.startNext = res)).then(() => {
        this.nextCommit = undefined;
        return this.startCommit();
      });
      if (wait > 0) this.nextTimer = setTimeout(() => this.hurry(), wait);
      else this.hurry();
    }
    if (this.stagedBytes >= COMMIT_NOW_BYTES || this.staged.length >= COMMIT_NOW_OPS) this.hurry();
    return this.nextCommit;
  }

  /** Starts the waiting commit as soon as the running one has landed. */
  private hurry(): void {
    clearTimeout(this.nextTimer);
    this.nextTimer = undefined;
    const start = this.startNext;
    if (start === undefined) return;
    this.startNext = undefined;
    if (this.runningCommit === undefined) start();
    else this.runningCommit.then(start, start);
  }

  private startCommit(): Promise<void> {
    const p = this.commitStaged();
    this.runningCommit = p;
    const clear = (): void => {
      if (this.runningCommit === p) this.runningCommit = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private commitStaged(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const ops = this.staged;
    const meta = this.stagedMeta;
    this.staged = [];
    this.landing.push(ops);
    this.overlayIndex = undefined;
    this.stagedMeta = new Map();
    const bytes = this.stagedBytes;
    this.stagedBytes = 0;
    this.inFlightBytes += bytes;
    const t0 = performance.now();
    this.lastStartMs = t0;
    const done = this.root.transaction(() => {
      for (const op of ops) {
        switch (op.t) {
          case 'staged':
            if (op.record === null) this.records.removeSync(op.key);
            else this.records.putSync(op.key, this.encodeForPut(op.record));
            break;
          case 'lease': {
            const k = Buffer.allocUnsafe(8);
            k.writeBigInt64BE(op.id);
            if (op.value === null) this.leases.removeSync(k);
            else this.leases.putSync(k, op.value);
            break;
          }
        }
      }
      for (const [name, value] of meta) {
        if (value === null) this.meta.removeSync(name);
        else this.meta.putSync(name, value);
      }
    });
    const committed = done.catch(async (e: unknown) => {
      const failure = await commitFailure(e);
      this.failure ??= failure;
      throw failure;
    }).finally(() => { this.inFlightBytes -= bytes; });
    return committed.then(() => {
      this.onCommitSeconds?.((performance.now() - t0) / 1000);
      const i = this.landing.indexOf(ops);
      if (i >= 0) this.landing.splice(i, 1);
      this.overlayIndex = undefined;
    });
  }

  /**
   * Replaces everything with the contents of another data file (a leader's snapshot), in one
   * transaction; the metadata named in `keep` (this member's own identity) survives.
   */
  async replaceWith(file: string, keep: readonly string[]): Promise<void> {
    const src = open<Buffer, Buffer>({ path: file, noSubdir: true, readOnly: true, maxDbs: 8, keyEncoding: 'binary', encoding: 'binary' });
    try {
      const from = {
        key: src.openDB<Buffer, Buffer>({ name: 'key', keyEncoding: 'binary', encoding: 'binary' }),
        meta: src.openDB<Buffer, string>({ name: 'meta', keyEncoding: 'ordered-binary', encoding: 'binary' }),
        lease: src.openDB<Buffer, Buffer>({ name: 'lease', keyEncoding: 'binary', encoding: 'binary' }),
      };
      const kept = keep.map((n) => [n, this.meta.getBinary(n)] as const);
      this.overlayIndex = undefined;
      this.landing = [];
      this.staged = [];
      this.stagedBytes = 0;
      await this.root.transaction(() => {
        for (const [to, f] of [[this.records, from.key], [this.leases, from.lease]] as const) {
          for (const k of to.getKeys()) to.removeSync(k);
          for (const { key, value } of f.getRange()) to.putSync(key, Buffer.from(value));
        }
        for (const k of this.meta.getKeys()) this.meta.removeSync(k);
        for (const { key, value } of from.meta.getRange()) this.meta.putSync(key, Buffer.from(value));
        for (const [n, v] of kept) if (v !== undefined) this.meta.putSync(n, Buffer.from(v));
      });
      await this.root.flushed;
    } finally {
      await src.close();
    }
  }

  /** A consistent copy of the whole environment, written to `file`. */
  backup(file: string): Promise<void> {
    return this.root.backup(file, true);
  }

  /** Allocated size of the data file and the bytes its live pages hold (usedBytes). */
  sizes(): { dbSize: number; inUse: number } {
    const dbSize = statSync(join(this.path, 'db')).size;
    return { dbSize, inUse: Math.min(dbSize, this.usedBytes()) };
  }

  /**
   * Bytes in pages that hold data now: every tree's branch, leaf and overflow pages (the root, the
   * three databases, LMDB's free list) and the two meta pages. Pages freed by deletes and
   * compaction are not counted: LMDB reuses them, so this, not the file's high-water mark, is
   * what the quota measures (and it shrinks after a compaction, as etcd's size does after defrag).
   */
  usedBytes(): number {
    type TreeStats = { pageSize?: number; treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number };
    const pages = (s: TreeStats | undefined): number => (s?.treeBranchPageCount ?? 0) + (s?.treeLeafPageCount ?? 0) + (s?.overflowPages ?? 0);
    const root = this.root.getStats() as TreeStats & { free?: TreeStats };
    let n = 2 + pages(root) + pages(root.free);
    for (const db of [this.records, this.meta, this.leases]) n += pages(db.getStats() as TreeStats);
    return n * (root.pageSize ?? 4096);
  }

  /**
   * Key and value bytes applied but not in LMDB yet (staged, or in the commit running): about
   * what usedBytes() grows by once they land (the quota counts them).
   */
  pendingBytes(): number {
    return this.stagedBytes + this.inFlightBytes;
  }

  /** Resolves once every commit so far is durable on disk. */
  async flushed(): Promise<void> {
    await this.root.flushed;
  }

  async close(): Promise<void> {
    if (this.nextCommit !== undefined) {
      const next = this.nextCommit;
      this.hurry();
      await next.catch(() => undefined);
    }
    await this.root.flushed;
    return this.root.close();
  }
}

/** A staged record write and its LMDB key, encoded once. */
interface StagedRecord {
  readonly t: 'staged';
  readonly key: Buffer;
  readonly main: number;
  readonly sub: number;
  readonly record: DecodedRecord | null;
}

type StagedOp = StagedRecord | Extract<StorageOp, { t: 'lease' }>;
