// The WAL's record format, pure: encode to and decode from bytes. A record on disk is
//
//   [u32 BE payload length][u32 BE crc32 of the payload][payload]
//
// and a payload starts with its kind:
//   1 entry      [u8 1][u8 entry type: 0 normal, 1 confChange][f64 term][f64 index][data...]
//   2 hardState  [u8 2][f64 term][u64 vote][f64 commit]
//   3 snapshot   [u8 3][f64 index][f64 term][u32 voters][u64 x voters][u32 learners][u64 x learners]
// Terms and indexes are below 2^53 (raft's types.ts), so doubles hold them exactly; ids are u64.
// A snapshot record marks that the state machine (LMDB) durably holds everything up to its index:
// replay starts after the newest one.
import { crc32 } from 'node:zlib';
import type { Entry, HardState, SnapshotMeta } from '../raft/index.js';

export const FRAME_BYTES = 8;
/** A record larger than this is corrupt (the biggest legal entry is a few MiB). */
export const RECORD_MAX_BYTES = 256 * 1024 * 1024;

export type WalRecord =
  | { readonly kind: 'entry'; readonly entry: Entry }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  | { readonly kind: 'snapshot'; readonly meta: SnapshotMeta };

function frame(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(FRAME_BYTES);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt32BE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/**
 * Entry data at least this long is written from the entry's own buffer (the proposal's encoding)
 * rather than copied into the batch's: a 1 MiB put would otherwise allocate and copy its value
 * once more for every WAL append. Smaller data is packed, so a batch of small entries stays one
 * buffer and one write.
 */
export const INLINE_MAX_BYTES = 64 * 1024;

/**
 * A batch of entries (and optionally a hard state after them) framed as consecutive chunks to
 * write in order: one buffer holding every frame header and all small entries' data (one
 * allocation, one copy of each: the write path's hot spot), split around the large entries'
 * data, which is referenced, not copied. The bytes are those of the records one after another.
 */
export function encodeBatchChunks(entries: readonly Entry[], hs: HardState | undefined): Buffer[] {
  let size = hs ? FRAME_BYTES + 25 : 0;
  for (const e of entries) size += FRAME_BYTES + 18 + (e.data.length < INLINE_MAX_BYTES ? e.data.length : 0);
  const out = Buffer.allocUnsafe(size);
  const chunks: Buffer[] = [];
  let o = 0;
  let from = 0;
  for (const e of entries) {
    const p = o + FRAME_BYTES;
    out[p] = 1;
    out[p + 1] = e.type === 'confChange' ? 1 : 0;
    out.writeDoubleBE(e.term, p + 2);
    out.writeDoubleBE(e.index, p + 10);
    out.writeUInt32BE(18 + e.data.length, o);
    const crc = crc32(e.data, crc32(out.subarray(p, p + 18)));
    out.writeUInt32BE(crc, o + 4);
    if (e.data.length < INLINE_MAX_BYTES) {
      out.set(e.data, p + 18);
      o = p + 18 + e.data.length;
    } else {
      o = p + 18;
      chunks.push(out.subarray(from, o), Buffer.from(e.data.buffer, e.data.byteOffset, e.data.length));
      from = o;
    }
  }
  if (hs) {
    encodeHardState(hs).copy(out, o);
    o += FRAME_BYTES + 25;
  }
  if (o > from || chunks.length === 0) chunks.push(out.subarray(from, o));
  return chunks;
}

/** A batch as one buffer (encodeBatchChunks joined). */
export function encodeBatch(entries: readonly Entry[], hs: HardState | undefined): Buffer {
  const chunks = encodeBatchChunks(entries, hs);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

export function encodeEntry(e: Entry): Buffer {
  return encodeBatch([e], undefined);
}

export function encodeHardState(hs: HardState): Buffer {
  const p = Buffer.allocUnsafe(25);
  p[0] = 2;
  p.writeDoubleBE(hs.term, 1);
  p.writeBigUInt64BE(hs.vote, 9);
  p.writeDoubleBE(hs.commit, 17);
  return frame(p);
}

export function encodeSnapshot(m: SnapshotMeta): Buffer {
  const p = Buffer.allocUnsafe(25 + 8 * (m.voters.length + m.learners.length));
  p[0] = 3;
  p.writeDoubleBE(m.index, 1);
  p.writeDoubleBE(m.term, 9);
  let o = 17;
  for (const list of [m.voters, m.learners]) {
    p.writeUInt32BE(list.length, o);
    o += 4;
    for (const id of list) {
      p.writeBigUInt64BE(id, o);
      o += 8;
    }
  }
  return frame(p);
}

function decodePayload(p: Buffer): WalRecord | undefined {
  switch (p[0]) {
    case 1:
      if (p.length < 18 || p[1]! > 1) return undefined;
      return {
        kind: 'entry',
        entry: { type: p[1] === 1 ? 'confChange' : 'normal', term: p.readDoubleBE(2), index: p.readDoubleBE(10), data: Buffer.from(p.subarray(18)) },
      };
    case 2:
      if (p.length !== 25) return undefined;
      return { kind: 'hardState', hardState: { term: p.readDoubleBE(1), vote: p.readBigUInt64BE(9), commit: p.readDoubleBE(17) } };
    case 3: {
      if (p.length < 25) return undefined;
      const lists: bigint[][] = [];
      let o = 17;
      for (let l = 0; l < 2; l++) {
        if (o + 4 > p.length) return undefined;
        const n = p.readUInt32BE(o);
        o += 4;
        if (o + 8 * n > p.length) return undefined;
        const ids: bigint[] = [];
        for (let i = 0; i < n; i++, o += 8) ids.push(p.readBigUInt64BE(o));
        lists.push(ids);
      }
      if (o !== p.length) return undefined;
      return { kind: 'snapshot', meta: { index: p.readDoubleBE(1), term: p.readDoubleBE(9), voters: lists[0]!, learners: lists[1]! } };
    }
    default:
      return undefined;
  }
}

/**
 * The records of one segment's bytes, and where the valid prefix ends: `end < buf.length` means a
 * torn or corrupt record starts at `end` (with `reason`).
 */
export function decodeRecords(buf: Buffer): { records: WalRecord[]; end: number; reason?: string } {
  const records: WalRecord[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + FRAME_BYTES > buf.length) return { records, end: o, reason: 'torn frame header' };
    const len = buf.readUInt32BE(o);
    if (len === 0 || len > RECORD_MAX_BYTES) return { records, end: o, reason: `bad record length ${len}` };
    if (o + FRAME_BYTES + len > buf.length) return { records, end: o, reason: 'torn record' };
    const payload = buf.subarray(o + FRAME_BYTES, o + FRAME_BYTES + len);
    if (crc32(payload) !== buf.readUInt32BE(o + 4)) return { records, end: o, reason: 'checksum mismatch' };
    const r = decodePayload(payload);
    if (r === undefined) return { records, end: o, reason: 'malformed record' };
    records.push(r);
    o += FRAME_BYTES + len;
  }
  return { records, end: o };
}
