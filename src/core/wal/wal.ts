// The write-ahead log: raft entries, hard states and snapshot markers (records.ts) appended to
// segment files `<seq:16 hex>-<first index:16 hex>.wal` in <data-dir>/member/wal/.
//
// - Appends go to the page cache at once (writeSync of one buffer per batch, plus one for each
//   large entry's data, written from the entry's own buffer); `sync()` makes them durable with
//   fdatasync. Group commit: the caller (node.ts) appends everything raft produced
//   while the previous sync ran, then syncs once for all of it.
// - A segment is closed (synced) once it passes `segmentBytes`; the next one starts with the
//   current hard state and the newest snapshot marker, so every segment after the newest marker is
//   self-sufficient and older segments can be deleted (`releaseTo`).
// - The segment being appended to is zero-filled ahead of its end (PREALLOC_BYTES at a time), as
//   etcd preallocates its segments: an fdatasync after appends inside the file's size flushes
//   data only, where growing the file also commits its size to the file system's journal (about
//   2x slower per sync on ext4 here). A clean close or a roll cuts the zeros off; after a crash a
//   segment may end in zeros, which is where its records end.
// - Opening replays every segment in order. A torn or corrupt record at the end of the LAST
//   segment is what a crash mid-append leaves: the file is truncated there (torn-tail repair) and
//   appending resumes. Damage anywhere else means lost acknowledged data: opening fails.
import { closeSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Entry, HardState, SnapshotMeta } from '../raft/index.js';
import { decodeRecords, encodeBatchChunks, encodeHardState, encodeSnapshot } from './records.js';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** How far ahead of its end the current segment is zero-filled at a time. */
export const PREALLOC_BYTES = 1024 * 1024;
/**
 * Zeros are written a page at a time: one big write makes the page cache keep the range as one
 * large folio, and then every later append dirties (and the kernel accounts as written) all of it.
 */
const ZERO_CHUNK = 4096;
const ZEROS = Buffer.alloc(ZERO_CHUNK);

/** The file operations behind appends and syncs (the calls a full or failing disk makes throw). */
export interface WalFileOps {
  writeSync(fd: number, buf: Buffer, offset: number, length: number, position: number): number;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  fdatasyncSync(fd: number): void;
}

/**
 * The process's WAL file layer: node:fs. Tests swap `current` for one that fails (ENOSPC on
 * write, EIO on fdatasync) to check what the server does when its disk does; nothing else does.
 */
export const walFileOps: { current: WalFileOps } = { current: { writeSync, fdatasync, fdatasyncSync } };
const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export class WalCorruptError extends Error {}

/** What a replay recovered: the newest snapshot marker and what follows it. */
export interface WalState {
  readonly snapshot: SnapshotMeta | undefined;
  readonly hardState: HardState | undefined;
  /** Entries after the snapshot, consecutive, conflicts already resolved (later wins). */
  readonly entries: readonly Entry[];
  /** Bytes cut off a torn tail (0 when the log ended cleanly). */
  readonly repairedBytes: number;
}

interface Segment {
  readonly seq: number;
  readonly firstIndex: number;
  readonly file: string;
}

function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

/** Makes a new file's directory entry durable (a crash must not lose a whole segment). */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fdatasyncP(fd: number): Promise<void> {
  return new Promise((res, rej) => walFileOps.current.fdatasync(fd, (err) => (err ? rej(err) : res())));
}

export class Wal {
  private segments: Segment[];
  private fd: number;
  /** Where the next record goes: the end of the records in the current segment. */
  private size: number;
  /** The current segment's file size (zeros from `size` on). */
  private allocated: number;
  private hardState: HardState | undefined;
  private snapshot: SnapshotMeta | undefined;
  private lastIndex: number;
  /** Bytes written since the last fdatasync started. */
  private dirty = false;
  private syncing: Promise<void> | undefined;
  private closed = false;
  /** Number of fdatasync calls (tests check group commit with it). */
  syncs = 0;
  /** Called with each fdatasync's duration in seconds (etcd_disk_wal_fsync_duration_seconds). */
  onSyncSeconds: ((s: number) => void) | undefined;

  private constructor(private readonly dir: string, private readonly segmentBytes: number, segments: Segment[], state: WalState, tailEnd: number) {
    this.segments = segments;
    this.hardState = state.hardState;
    this.snapshot = state.snapshot;
    const last = state.entries[state.entries.length - 1];
    this.lastIndex = last?.index ?? state.snapshot?.index ?? 0;
    const tail = segments[segments.length - 1]!;
    this.fd = openSync(tail.file, 'r+');
    this.size = tailEnd;
    this.allocated = fstatSync(this.fd).size;
  }

  /** Opens (creating if needed) the WAL in dir and replays it. */
  static open(dir: string, segmentBytes = DEFAULT_SEGMENT_BYTES): { wal: Wal; state: WalState } {
    mkdirSync(dir, { recursive: true });
    const segments: Segment[] = readdirSync(dir)
      .map((f) => NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ seq: parseInt(m[1]!, 16), firstIndex: parseInt(m[2]!, 16), file: join(dir, m[0]) }))
      .sort((a, b) => a.seq - b.seq);
    if (segments.length === 0) {
      const first = { seq: 0, firstIndex: 0, file: join(dir, segmentName(0, 0)) };
      closeSync(openSync(first.file, 'wx'));
      syncDir(dir);
      segments.push(first);
    }
    const { state, tailEnd } = replay(segments);
    return { wal: new Wal(dir, segmentBytes, segments, state, tailEnd), state };
  }

  /** Appends a batch (to the page cache); returns true when it must be synced before acking. */
  append(hardState: HardState | undefined, entries: readonly Entry[]): boolean {
    if (entries.length === 0 && hardState === undefined) return false;
    for (const chunk of encodeBatchChunks(entries, hardState)) this.write(chunk);
    const mustSync = entries.length > 0 || (hardState !== undefined && (this.hardState === undefined || hardState.term !== this.hardState.term || hardState.vote !== this.hardState.vote));
    if (hardState) this.hardState = hardState;
    const last = entries[entries.length - 1];
    if (last) this.lastIndex = last.index;
    if (this.size >= this.segmentBytes) this.roll();
    return mustSync;
  }

  /** Records that the state machine durably holds everything up to meta.index. */
  saveSnapshot(meta: SnapshotMeta): void {
    this.snapshot = meta;
    this.write(encodeSnapshot(meta));
  }

  private write(buf: Buffer): void {
    if (this.closed) throw new Error('wal: closed');
    if (this.size + buf.length > this.allocated && this.size + buf.length < this.segmentBytes) this.preallocate(this.size + buf.length);
    let o = 0;
    while (o < buf.length) o += walFileOps.current.writeSync(this.fd, buf, o, buf.length - o, this.size + o);
    this.size += buf.length;
    if (this.size > this.allocated) this.allocated = this.size;
    this.dirty = true;
  }

  /** Zero-fills the segment from its file end to past `need` (PREALLOC_BYTES more, up to segmentBytes). */
  private preallocate(need: number): void {
    const target = Math.max(need, Math.min(this.allocated + PREALLOC_BYTES, this.segmentBytes));
    while (this.allocated < target) {
      const n = Math.min(target - this.allocated, ZERO_CHUNK);
      this.allocated += walFileOps.current.writeSync(this.fd, ZEROS, 0, n, this.allocated);
    }
  }

  /** Cuts the zeros after the records off the current segment (its size becomes `size`). */
  private trimPreallocated(): void {
    if (this.allocated > this.size) ftruncateSync(this.fd, this.size);
    this.allocated = this.size;
  }

  /** Makes everything appended so far durable (concurrent callers share fdatasyncs). */
  async sync(): Promise<void> {
    while (this.dirty || this.syncing) {
      if (this.syncing) {
        await this.syncing;
        continue;
      }
      this.dirty = false;
      this.syncs++;
      const t0 = performance.now();
      this.syncing = fdatasyncP(this.fd).finally(() => {
        this.syncing = undefined;
        this.onSyncSeconds?.((performance.now() - t0) / 1000);
      });
      await this.syncing;
    }
  }

  /** Closes the current segment (synced) and starts the next with the hard state and snapshot. */
  private roll(): void {
    // The closed segment must be durable before a newer one can be relied on.
    this.trimPreallocated();
    walFileOps.current.fdatasyncSync(this.fd);
    closeSync(this.fd);
    const prev = this.segments[this.segments.length - 1]!;
    const seg = { seq: prev.seq + 1, firstIndex: this.lastIndex + 1, file: join(this.dir, segmentName(prev.seq + 1, this.lastIndex + 1)) };
    this.fd = openSync(seg.file, 'wx+');
    syncDir(this.dir);
    this.segments.push(seg);
    this.size = 0;
    this.allocated = 0;
    const head: Buffer[] = [];
    if (this.snapshot) head.push(encodeSnapshot(this.snapshot));
    if (this.hardState) head.push(encodeHardState(this.hardState));
    if (head.length > 0) this.write(Buffer.concat(head));
  }

  /**
   * Deletes the closed segments that only hold entries <= index (a snapshot marker at or after
   * index must already be durable in a later segment: the caller saves one and syncs first).
   */
  releaseTo(index: number): number {
    let removed = 0;
    while (this.segments.length > 1) {
      const next = this.segments[1]!;
      // Segment 0 holds entries below next.firstIndex only.
      if (next.firstIndex - 1 > index) break;
      const s = this.segments.shift()!;
      rmSync(s.file, { force: true });
      removed++;
    }
    return removed;
  }

  /** Segment files currently on disk (oldest first). */
  files(): string[] {
    return this.segments.map((s) => s.file);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      // The cut is a change to the file like an append: the one last fdatasync covers both.
      if (this.allocated > this.size) {
        this.trimPreallocated();
        this.dirty = true;
      }
      await this.sync();
    } finally {
      this.closed = true;
      closeSync(this.fd);
    }
  }
}

/** True when b holds only zero bytes. */
function allZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Reads every segment; repairs a torn tail of the last one (truncating the file). A segment's
 * records end where zeros begin (preallocated, not yet written). tailEnd: where the last
 * segment's records end.
 */
function replay(segments: readonly Segment[]): { state: WalState; tailEnd: number } {
  let tailEnd = 0;
  let snapshot: SnapshotMeta | undefined;
  let hardState: HardState | undefined;
  let entries: Entry[] = [];
  let repairedBytes = 0;
  segments.forEach((seg, i) => {
    const buf = readFileSync(seg.file);
    const { records, end, reason } = decodeRecords(buf);
    if (i === segments.length - 1) tailEnd = end;
    if (end < buf.length && !allZero(buf.subarray(end))) {
      if (i !== segments.length - 1) throw new WalCorruptError(`wal: ${seg.file}: ${reason} at offset ${end} (not the last segment: refusing to start)`);
      const fd = openSync(seg.file, 'r+');
      try {
        ftruncateSync(fd, end);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      repairedBytes = buf.length - end;
    }
    for (const r of records) {
      switch (r.kind) {
        case 'snapshot':
          snapshot = r.meta;
          entries = entries.filter((e) => e.index > r.meta.index);
          break;
        case 'hardState':
          hardState = r.hardState;
          break;
        case 'entry': {
          const e = r.entry;
          if (snapshot && e.index <= snapshot.index) break;
          // A conflicting suffix rewritten by a new leader replaces the old one.
          const first = entries[0];
          if (first && e.index <= entries[entries.length - 1]!.index) entries = entries.slice(0, Math.max(0, e.index - first.index));
          const last = entries[entries.length - 1];
          if (last && e.index !== last.index + 1) throw new WalCorruptError(`wal: ${seg.file}: entry ${e.index} does not follow ${last.index}`);
          entries.push(e);
          break;
        }
      }
    }
  });
  // Entries right after the snapshot must start at snapshot.index + 1.
  const first = entries[0];
  if (first && snapshot && first.index !== snapshot.index + 1) throw new WalCorruptError(`wal: first entry ${first.index} does not follow snapshot ${snapshot.index}`);
  return { state: { snapshot, hardState, entries, repairedBytes }, tailEnd };
}
