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

/** LMDB's map size: the most the data file can grow to (--quota-backend-bytes refuses writes well before). */
const MAP_SIZE_BYTES = 64 * 2 ** 30;

export class LmdbStorage implements MvccStorage {
  readonly mapSizeBytes = MAP_SIZE_BYTES;
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly records: Database<Buffer, Buffer>;
  private readonly meta: Database<Buffer, string>;
  private readonly leases: Database<Buffer, Buffer>;
  /** Staged and not yet committed records, by latin1 revision key; null = deleted. */
  private readonly overlay = new Map<string, { op: StorageOp; value: Buffer | null }>();
  private staged: StorageOp[] = [];
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
    const staged = this.overlay.get(k.toString('latin1'));
    if (staged !== undefined) return staged.value ?? undefined;
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
    this.staged.push(op);
    if (op.t === 'rec') this.overlay.set(revKey(op.main, op.sub).toString('latin1'), { op, value: op.value });
  }

  commit(): Promise<void> {
    const ops = this.staged;
    this.staged = [];
    const t0 = performance.now();
    const done = this.root.transaction(() => {
      for (const op of ops) {
        switch (op.t) {
          case 'rec': {
            const k = revKey(op.main, op.sub);
            if (op.value === null) this.records.removeSync(k);
            else this.records.putSync(k, op.value);
            break;
          }
          case 'meta':
            if (op.value === null) this.meta.removeSync(op.name);
            else this.meta.putSync(op.name, op.value);
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
    });
    return done.then(() => {
      this.onCommitSeconds?.((performance.now() - t0) / 1000);
      for (const op of ops) {
        if (op.t !== 'rec') continue;
        const k = revKey(op.main, op.sub).toString('latin1');
        if (this.overlay.get(k)?.op === op) this.overlay.delete(k);
      }
    });
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

  /** Resolves once every commit so far is durable on disk. */
  async flushed(): Promise<void> {
    await this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.flushed;
    return this.root.close();
  }
}
