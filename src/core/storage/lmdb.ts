// The only lmdb import: MVCC records by revision key, metadata and lease records in one LMDB
// environment. A commit's promise resolves once it is committed (visible, crash-consistent:
// overlappingSync on, LMDB syncs in the background); `flushed()` resolves once everything
// committed is on disk. Durability of acknowledged writes comes from the WAL in front (node.ts):
// after a crash the WAL replays what the last flush did not hold. Staged writes are visible to
// reads through an overlay until their commit lands.
import { open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseRevKey, revKey } from '../mvcc/record.js';
import type { MvccStorage, StorageOp } from '../mvcc/storage.js';

/** LMDB's map size: the most the data file can grow to (there is no --quota-backend-bytes yet). */
const MAP_SIZE_BYTES = 64 * 2 ** 30;

export class LmdbStorage implements MvccStorage {
  readonly mapSizeBytes = MAP_SIZE_BYTES;
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly records: Database<Buffer, Buffer>;
  private readonly meta: Database<Buffer, string>;
  private readonly leases: Database<Buffer, Buffer>;
  /** Staged and not yet committed records, by latin1 revision key; null = deleted. */
  private readonly overlay = new Map<string, StagedRecord>();
  /** Record and lease writes in stage order; each record carries its key, encoded once. */
  private staged: (StagedRecord | Extract<StorageOp, { t: 'lease' }>)[] = [];
  /**
   * Metadata staged since the last commit, by name: only the newest value of a name reaches LMDB
   * (the current revision and the consistent index change on every apply, and a batch of N puts
   * would otherwise write each of them N times).
   */
  private stagedMeta = new Map<string, Buffer | null>();
  readonly path: string;

  /** onCommitSeconds: called with each commit's latency (enqueue to durable, fsync included). */
  constructor(dir: string, private readonly onCommitSeconds?: (seconds: number) => void) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'member', 'snap');
    mkdirSync(this.path, { recursive: true });
    this.root = open<Buffer, Buffer>({
      path: join(this.path, 'db'),
      noSubdir: true,
      overlappingSync: true,
      maxDbs: 8,
      mapSize: MAP_SIZE_BYTES,
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    this.records = this.root.openDB<Buffer, Buffer>({ name: 'key', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = this.root.openDB<Buffer, string>({ name: 'meta', keyEncoding: 'ordered-binary', encoding: 'binary' });
    this.leases = this.root.openDB<Buffer, Buffer>({ name: 'lease', keyEncoding: 'binary', encoding: 'binary' });
  }

  getRecord(main: number, sub: number): Buffer | undefined {
    const k = revKey(main, sub);
    if (this.overlay.size > 0) {
      const staged = this.overlay.get(k.toString('latin1'));
      if (staged !== undefined) return staged.value ?? undefined;
    }
    return this.records.getBinary(k) ?? undefined;
  }

  *scanRecords(fromMain: number, toMain: number): Iterable<{ main: number; sub: number; value: Buffer }> {
    for (const { key, value } of this.records.getRange({ start: revKey(fromMain, 0), end: revKey(toMain, 0) })) {
      const { main, sub } = parseRevKey(key);
      yield { main, sub, value: Buffer.from(value) };
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
        const rec: StagedRecord = { t: 'staged', key, id: key.toString('latin1'), value: op.value };
        this.staged.push(rec);
        this.overlay.set(rec.id, rec);
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

  commit(): Promise<void> {
    const ops = this.staged;
    const meta = this.stagedMeta;
    this.staged = [];
    this.stagedMeta = new Map();
    const t0 = performance.now();
    const done = this.root.transaction(() => {
      for (const op of ops) {
        switch (op.t) {
          case 'staged':
            if (op.value === null) this.records.removeSync(op.key);
            else this.records.putSync(op.key, op.value);
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
    return done.then(() => {
      this.onCommitSeconds?.((performance.now() - t0) / 1000);
      for (const op of ops) {
        if (op.t === 'staged' && this.overlay.get(op.id) === op) this.overlay.delete(op.id);
      }
    });
  }

  /** A consistent copy of the whole environment, written to `file`. */
  backup(file: string): Promise<void> {
    return this.root.backup(file, true);
  }

  /** Allocated size of the data file and the bytes its pages hold. */
  sizes(): { dbSize: number; inUse: number } {
    const dbSize = statSync(join(this.path, 'db')).size;
    const stats = this.root.getStats() as { pageSize?: number; lastPageNumber?: number };
    const used = ((stats.lastPageNumber ?? 0) + 1) * (stats.pageSize ?? 4096);
    return { dbSize, inUse: Math.min(dbSize, used) };
  }

  /** Resolves once every commit so far is durable on disk. */
  async flushed(): Promise<void> {
    await this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.flushed;
    return this.root.close();
  }
}

/** A staged record write: its LMDB key and the overlay's string form of it, computed once. */
interface StagedRecord {
  readonly t: 'staged';
  readonly key: Buffer;
  readonly id: string;
  readonly value: Buffer | null;
}
