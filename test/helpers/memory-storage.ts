// An in-memory MvccStorage for pure tests of the core (the sibling of raft's MemoryStorage).
import { encodeRecord } from '../../src/core/mvcc/record.js';
import type { MvccStorage, StorageOp } from '../../src/core/mvcc/storage.js';

export class MemoryStorage implements MvccStorage {
  readonly records = new Map<string, Buffer>();
  readonly meta = new Map<string, Buffer>();
  readonly leases = new Map<bigint, Buffer>();
  private staged: StorageOp[] = [];

  private static key(main: number, sub: number): string {
    return `${String(main).padStart(16, '0')}.${String(sub).padStart(16, '0')}`;
  }

  getRecord(main: number, sub: number): Buffer | undefined {
    return this.records.get(MemoryStorage.key(main, sub));
  }

  *scanRecords(fromMain: number, toMain: number): Iterable<{ main: number; sub: number; value: Buffer }> {
    for (const k of [...this.records.keys()].sort()) {
      const [m, s] = k.split('.').map(Number) as [number, number];
      if (m >= fromMain && m < toMain) yield { main: m, sub: s, value: this.records.get(k)! };
    }
  }

  getMeta(name: string): Buffer | undefined {
    return this.meta.get(name);
  }

  *scanLeases(): Iterable<{ id: bigint; value: Buffer }> {
    for (const [id, value] of this.leases) yield { id, value };
  }

  /** Staged ops apply at once: reads in tests see them, as the LMDB overlay makes them visible. */
  stage(op: StorageOp): void {
    this.staged.push(op);
    switch (op.t) {
      case 'rec': {
        const k = MemoryStorage.key(op.main, op.sub);
        if (op.record === null) this.records.delete(k);
        else this.records.set(k, encodeRecord(op.record.kv, op.record.tombstone));
        break;
      }
      case 'meta':
        if (op.value === null) this.meta.delete(op.name);
        else this.meta.set(op.name, op.value);
        break;
      case 'lease':
        if (op.value === null) this.leases.delete(op.id);
        else this.leases.set(op.id, op.value);
        break;
    }
  }

  async commit(): Promise<void> {
    this.staged = [];
  }
}
