// The MVCC key-value store: an in-memory index of every key's revision history and live value,
// over a storage of records by revision. Reads at the current revision never touch storage.
// Writes happen inside a WriteTxn, which numbers its changes main.sub like etcd.
import { EtcdError } from '../../backend/errors.js';
import { fromBin, toBin, type KeyRange } from '../../util/bytes.js';
import { KeyIndex } from './key-index.js';
import { decodeRecord, type KV } from './record.js';
import { SortedKeys } from './sorted-keys.js';
import type { MvccStorage } from './storage.js';

interface Entry {
  readonly idx: KeyIndex;
  /** The live value at the current revision; undefined while deleted. */
  cur: KV | undefined;
}

export interface Change {
  readonly type: 'put' | 'delete';
  /** For a delete: only key and modRev are meaningful. */
  readonly kv: KV;
  readonly prev: KV | undefined;
}

const META_REV = 'currentRev';
const META_COMPACT = 'compactRev';
const EMPTY = Buffer.alloc(0);

function num(b: Buffer | undefined, dflt: number): number {
  return b === undefined ? dflt : b.readDoubleBE(0);
}
function numBuf(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(n);
  return b;
}

/** Running totals for metrics (etcd_mvcc_*_total, etcd_debugging_mvcc_keys_total): plain
 * numbers bumped on the write and read paths, read at scrape time. */
export interface StoreOpCounts {
  puts: number;
  deletes: number;
  ranges: number;
  txns: number;
  /** Live keys at the current revision. */
  liveKeys: number;
}

export class MvccStore {
  readonly counts: StoreOpCounts = { puts: 0, deletes: 0, ranges: 0, txns: 0, liveKeys: 0 };
  private readonly entries = new Map<string, Entry>();
  private keys = new SortedKeys();
  private rev = 1;
  /** etcd's compactMainRev: -1 until the first compaction. */
  private compacted = -1;

  constructor(private readonly storage: MvccStorage) {
    this.restore();
  }

  get currentRev(): number {
    return this.rev;
  }

  get compactRev(): number {
    return this.compacted;
  }

  /** Drops the index and rebuilds it from storage (a snapshot from the leader replaced it). */
  reload(): void {
    this.entries.clear();
    this.keys = new SortedKeys();
    this.counts.liveKeys = 0;
    this.rev = 1;
    this.compacted = -1;
    this.restore();
  }

  /** Rebuilds the index from storage, as etcd's restore does. */
  private restore(): void {
    let maxRev = 1;
    for (const { main, sub, value } of this.storage.scanRecords(0, Number.MAX_SAFE_INTEGER)) {
      const { kv, tombstone } = decodeRecord(value);
      const k = toBin(kv.key);
      const e = this.entry(k);
      if (tombstone) {
        e.idx.tombstone(main, sub);
        e.cur = undefined;
      } else {
        e.idx.put(main, sub);
        e.cur = { ...kv, key: Buffer.from(kv.key), value: Buffer.from(kv.value) };
      }
      maxRev = main;
    }
    for (const e of this.entries.values()) if (e.cur !== undefined) this.counts.liveKeys++;
    this.compacted = num(this.storage.getMeta(META_COMPACT), -1);
    this.rev = Math.max(maxRev, this.compacted, num(this.storage.getMeta(META_REV), 1));
  }

  private entry(k: string): Entry {
    let e = this.entries.get(k);
    if (e === undefined) {
      e = { idx: new KeyIndex(), cur: undefined };
      this.entries.set(k, e);
      this.keys.insert(k);
    }
    return e;
  }

  /** etcd's revision checks for a read at `rev` (<= 0 means current). */
  resolveRev(rev: number, current = this.rev): number {
    if (rev > current) throw new EtcdError('futureRev');
    if (rev <= 0) return current;
    if (rev < this.compacted) throw new EtcdError('compacted');
    return rev;
  }

  /** The value of one key as of `rev` (already resolved). */
  get(k: string, rev: number): KV | undefined {
    const e = this.entries.get(k);
    if (e === undefined) return undefined;
    if (rev >= this.rev) return e.cur;
    const at = e.idx.findAt(rev);
    if (at === undefined) return undefined;
    return this.readRecord(at.main, at.sub);
  }

  readRecord(main: number, sub: number): KV | undefined {
    const b = this.storage.getRecord(main, sub);
    if (b === undefined) return undefined;
    const { kv, tombstone } = decodeRecord(b);
    return tombstone ? undefined : kv;
  }

  /** Binary-string keys of the range in ascending order (including deleted ones with history). */
  private *rangeKeys(r: KeyRange): Generator<string> {
    if (r.end === undefined) {
      if (this.entries.has(r.key)) yield r.key;
      return;
    }
    yield* this.keys.range(r.key, r.end);
  }

  /**
   * Live key-values in the range as of `rev` (resolved), ascending by key: the first `limit`
   * (0 = all), and the total count of live keys in the range.
   */
  range(r: KeyRange, rev: number, limit: number, countOnly: boolean): { kvs: KV[]; count: number } {
    this.counts.ranges++;
    const current = rev >= this.rev;
    if (r.end === undefined && current) {
      // One key at the current revision (most reads, every compare): no key generator.
      const cur = this.entries.get(r.key)?.cur;
      if (cur === undefined) return { kvs: [], count: 0 };
      return { kvs: countOnly ? [] : [cur], count: 1 };
    }
    const kvs: KV[] = [];
    let count = 0;
    for (const k of this.rangeKeys(r)) {
      const e = this.entries.get(k)!;
      if (current) {
        if (e.cur === undefined) continue;
        count++;
        if (!countOnly && (limit <= 0 || kvs.length < limit)) kvs.push(e.cur);
      } else {
        const at = e.idx.findAt(rev);
        if (at === undefined) continue;
        count++;
        if (!countOnly && (limit <= 0 || kvs.length < limit)) {
          const kv = this.readRecord(at.main, at.sub);
          if (kv !== undefined) kvs.push(kv);
        }
      }
    }
    return { kvs, count };
  }

  /** Live keys (binary strings) in the range at the current revision. */
  *liveKeys(r: KeyRange): Generator<KV> {
    for (const k of this.rangeKeys(r)) {
      const cur = this.entries.get(k)!.cur;
      if (cur !== undefined) yield cur;
    }
  }

  beginWrite(): WriteTxn {
    return new WriteTxn(this, this.storage);
  }

  /** Called by WriteTxn.end: the revision advances once per txn that changed something. */
  commitRev(rev: number): void {
    this.rev = rev;
    this.storage.stage({ t: 'meta', name: META_REV, value: numBuf(rev) });
  }

  /** @internal for WriteTxn */
  writeKey(k: string): Entry {
    return this.entry(k);
  }

  /**
   * Compacts history up to `rev`: every key keeps its newest revision <= rev; older ones and keys
   * deleted at or before rev are removed from the index and storage.
   */
  compact(rev: number): void {
    if (rev <= this.compacted) throw new EtcdError('compacted');
    if (rev > this.rev) throw new EtcdError('futureRev');
    const drop = (main: number, sub: number): void => this.storage.stage({ t: 'rec', main, sub, record: null });
    for (const [k, e] of this.entries) {
      e.idx.compact(rev, drop);
      if (e.idx.isEmpty()) {
        this.entries.delete(k);
        this.keys.delete(k);
      }
    }
    this.compacted = rev;
    this.storage.stage({ t: 'meta', name: META_COMPACT, value: numBuf(rev) });
  }
}

export class WriteTxn {
  readonly rev: number;
  private sub = 0;
  readonly changes: Change[] = [];

  constructor(private readonly store: MvccStore, private readonly storage: MvccStorage) {
    this.rev = store.currentRev + 1;
  }

  /** The revision reads inside this txn see: the new one once something was written. */
  get readRev(): number {
    return this.changes.length > 0 ? this.rev : this.rev - 1;
  }

  /** Puts the key `k` (a binary string, see util/bytes.ts). */
  put(k: string, value: Buffer, lease: bigint): KV | undefined {
    const e = this.store.writeKey(k);
    const prev = e.cur;
    this.store.counts.puts++;
    if (prev === undefined) this.store.counts.liveKeys++;
    const kv: KV = {
      key: prev?.key ?? fromBin(k),
      createRev: prev === undefined ? this.rev : prev.createRev,
      modRev: this.rev,
      version: prev === undefined ? 1 : prev.version + 1,
      lease,
      value,
    };
    const sub = this.sub++;
    this.storage.stage({ t: 'rec', main: this.rev, sub, record: { kv, tombstone: false } });
    e.idx.put(this.rev, sub);
    e.cur = kv;
    this.changes.push({ type: 'put', kv, prev });
    return prev;
  }

  /** Deletes every live key in the range; returns the deleted key-values in key order. */
  deleteRange(r: KeyRange): KV[] {
    const deleted = [...this.store.liveKeys(r)];
    this.store.counts.deletes++;
    this.store.counts.liveKeys -= deleted.length;
    for (const prev of deleted) {
      const e = this.store.writeKey(toBin(prev.key));
      const tomb: KV = { key: prev.key, createRev: 0, modRev: this.rev, version: 0, lease: 0n, value: EMPTY };
      const sub = this.sub++;
      this.storage.stage({ t: 'rec', main: this.rev, sub, record: { kv: tomb, tombstone: true } });
      e.idx.tombstone(this.rev, sub);
      e.cur = undefined;
      this.changes.push({ type: 'delete', kv: tomb, prev });
    }
    return deleted;
  }

  /** Ends the txn: advances the store revision if anything changed. */
  end(): void {
    if (this.changes.length > 0) this.store.commitRev(this.rev);
  }
}
