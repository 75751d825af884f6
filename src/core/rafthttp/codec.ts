// Raft messages on the wire between members: a compact binary form (big-endian), one batch per
// pipeline POST body, or one length-prefixed frame per batch on a stream (and at the head of a
// snapshot body). Not etcd's raftpb (peers are always members of this implementation): it only has
// to round-trip every field of raft/types.ts Message exactly.
import type { Entry, EntryType, Message, MessageType, NodeId, Snapshot } from '../raft/index.js';

const TYPES: readonly MessageType[] = [
  'vote', 'preVote', 'voteResponse', 'preVoteResponse', 'append', 'appendResponse', 'heartbeat',
  'heartbeatResponse', 'snapshot', 'propose', 'readIndex', 'readIndexResponse', 'timeoutNow', 'transferLeader',
];
const TYPE_CODE = new Map<MessageType, number>(TYPES.map((t, i) => [t, i]));
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

export class CodecError extends Error {}

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  bool(v: boolean): void {
    this.u8(v ? 1 : 0);
  }

  id(v: bigint): void {
    this.room(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
  }

  /** A counter (term, index): a safe integer, as a double (exact below 2^53). */
  num(v: number): void {
    this.room(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }

  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.room(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  optId(v: bigint | undefined): void {
    this.bool(v !== undefined);
    if (v !== undefined) this.id(v);
  }

  ids(v: readonly NodeId[]): void {
    this.u32(v.length);
    for (const x of v) this.id(x);
  }

  entries(v: readonly Entry[]): void {
    this.u32(v.length);
    for (const e of v) {
      this.num(e.term);
      this.num(e.index);
      this.u8(ENTRY_TYPES.indexOf(e.type));
      this.bytes(e.data);
    }
  }

  /** Writes a u32 at an earlier position (a frame's length, known once the batch is written). */
  patchU32(at: number, v: number): void {
    this.buf.writeUInt32BE(v, at);
  }

  get length(): number {
    return this.pos;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new CodecError('raft message batch truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  bool(): boolean {
    return this.u8() !== 0;
  }

  id(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  num(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`raft message: bad counter ${v}`);
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    // A copy: entries outlive the request body they came in.
    const v = new Uint8Array(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }

  optId(): bigint | undefined {
    return this.bool() ? this.id() : undefined;
  }

  ids(): NodeId[] {
    const n = this.u32();
    const out: NodeId[] = [];
    for (let i = 0; i < n; i++) out.push(this.id());
    return out;
  }

  entries(): Entry[] {
    const n = this.u32();
    const out: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const term = this.num();
      const index = this.num();
      const type = ENTRY_TYPES[this.u8()];
      if (type === undefined) throw new CodecError('raft message: bad entry type');
      out.push({ term, index, type, data: this.bytes() });
    }
    return out;
  }

  get atEnd(): boolean {
    return this.pos === this.buf.length;
  }
}

function writeMessage(w: Writer, m: Message): void {
  w.u8(TYPE_CODE.get(m.type)!);
  w.id(m.from);
  w.id(m.to);
  w.num(m.term);
  switch (m.type) {
    case 'vote':
    case 'preVote':
      w.num(m.lastIndex);
      w.num(m.lastTerm);
      w.bool(m.transfer);
      break;
    case 'voteResponse':
    case 'preVoteResponse':
      w.bool(m.reject);
      break;
    case 'append':
      w.num(m.prevIndex);
      w.num(m.prevTerm);
      w.entries(m.entries);
      w.num(m.commit);
      break;
    case 'appendResponse':
      w.num(m.index);
      w.bool(m.reject);
      w.num(m.hintIndex);
      w.num(m.hintTerm);
      break;
    case 'heartbeat':
      w.num(m.commit);
      w.optId(m.ctx);
      break;
    case 'heartbeatResponse':
      w.optId(m.ctx);
      break;
    case 'snapshot':
      writeSnapshotMeta(w, m.snapshot);
      w.bytes(m.snapshot.data);
      break;
    case 'propose':
      w.entries(m.entries);
      break;
    case 'readIndex':
      w.id(m.ctx);
      break;
    case 'readIndexResponse':
      w.id(m.ctx);
      w.num(m.index);
      break;
    case 'timeoutNow':
      break;
    case 'transferLeader':
      w.id(m.transferee);
      break;
  }
}

function writeSnapshotMeta(w: Writer, s: Snapshot): void {
  w.num(s.meta.index);
  w.num(s.meta.term);
  w.ids(s.meta.voters);
  w.ids(s.meta.learners);
}

function readMessage(r: Reader): Message {
  const type = TYPES[r.u8()];
  if (type === undefined) throw new CodecError('raft message: unknown type');
  const env = { from: r.id(), to: r.id(), term: r.num() };
  switch (type) {
    case 'vote':
    case 'preVote':
      return { type, ...env, lastIndex: r.num(), lastTerm: r.num(), transfer: r.bool() };
    case 'voteResponse':
    case 'preVoteResponse':
      return { type, ...env, reject: r.bool() };
    case 'append':
      return { type, ...env, prevIndex: r.num(), prevTerm: r.num(), entries: r.entries(), commit: r.num() };
    case 'appendResponse':
      return { type, ...env, index: r.num(), reject: r.bool(), hintIndex: r.num(), hintTerm: r.num() };
    case 'heartbeat':
      return { type, ...env, commit: r.num(), ctx: r.optId() };
    case 'heartbeatResponse':
      return { type, ...env, ctx: r.optId() };
    case 'snapshot': {
      const meta = { index: r.num(), term: r.num(), voters: r.ids(), learners: r.ids() };
      return { type, ...env, snapshot: { meta, data: r.bytes() } };
    }
    case 'propose':
      return { type, ...env, entries: r.entries() };
    case 'readIndex':
      return { type, ...env, ctx: r.id() };
    case 'readIndexResponse':
      return { type, ...env, ctx: r.id(), index: r.num() };
    case 'timeoutNow':
      return { type, ...env };
    case 'transferLeader':
      return { type, ...env, transferee: r.id() };
  }
}

function writeBatch(w: Writer, msgs: readonly Message[]): void {
  w.u32(msgs.length);
  for (const m of msgs) writeMessage(w, m);
}

/** A batch of messages -> one body. */
export function encodeBatch(msgs: readonly Message[]): Buffer {
  const w = new Writer();
  writeBatch(w, msgs);
  return w.done();
}

/**
 * A frame: [u32 length][batch] (the length counts the batch only). Streams carry a sequence of
 * them, so a reader finds message boundaries in a byte stream whose chunks fall anywhere.
 */
export function encodeFrame(msgs: readonly Message[]): Buffer {
  const w = new Writer();
  w.u32(0);
  writeBatch(w, msgs);
  w.patchU32(0, w.length - 4);
  return w.done();
}

/** A frame of length 0 carries no batch: a stream's link heartbeat (the link is alive while idle). */
export const LINK_HEARTBEAT = Buffer.alloc(4);

/** The largest frame a reader accepts (a bigger length is a corrupt or hostile stream). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/**
 * Cuts a byte stream into frames and decodes them, keeping a partial frame between chunks.
 * Decoding is all or nothing per frame: a CodecError means the stream is unusable from there on.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the held-back frame needs in all (header included), once its header is complete. */
  private need = 0;

  /** The messages of every frame completed by this chunk, in stream order. */
  push(chunk: Buffer): Message[] {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // A big frame arrives in many chunks: join them once it is complete, not on every chunk.
      if (this.need > 0 && this.pendingBytes < this.need) return [];
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const out: Message[] = [];
    let pos = 0;
    this.need = 0;
    while (buf.length - pos >= 4) {
      const len = buf.readUInt32BE(pos);
      if (len > MAX_FRAME_BYTES) throw new CodecError(`raft stream: frame of ${len} bytes`);
      if (buf.length - pos - 4 < len) {
        this.need = 4 + len;
        break;
      }
      if (len > 0) for (const m of decodeBatch(buf.subarray(pos + 4, pos + 4 + len))) out.push(m);
      pos += 4 + len;
    }
    if (pos < buf.length) {
      // A copy when small: the rest of a big chunk must not pin it in memory.
      const rest = buf.subarray(pos);
      this.pending.push(rest.length < 4096 ? Buffer.from(rest) : rest);
      this.pendingBytes = rest.length;
    }
    return out;
  }

  /** Bytes of an incomplete frame held back (0 at a frame boundary). */
  get buffered(): number {
    return this.pendingBytes;
  }
}

/** One body -> its messages; CodecError on anything malformed (the whole batch is refused). */
export function decodeBatch(body: Buffer): Message[] {
  const r = new Reader(body);
  const n = r.u32();
  const out: Message[] = [];
  for (let i = 0; i < n; i++) out.push(readMessage(r));
  if (!r.atEnd) throw new CodecError('raft message batch: trailing bytes');
  return out;
}
