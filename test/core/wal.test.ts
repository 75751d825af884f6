// The write-ahead log on a real directory: replay, torn-tail repair, corruption refused, segment
// roll and release, and group commit (many appends, one fdatasync).
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Entry } from '../../src/core/raft/index.js';
import { decodeRecords, encodeBatch, encodeBatchChunks, encodeEntry, encodeHardState, encodeSnapshot, INLINE_MAX_BYTES } from '../../src/core/wal/records.js';
import { PREALLOC_BYTES, Wal, WalCorruptError } from '../../src/core/wal/wal.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

const entry = (index: number, term = 1, data = `e${index}`): Entry => ({ index, term, type: 'normal', data: Buffer.from(data) });
const indexes = (es: readonly Entry[]): number[] => es.map((e) => e.index);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await makeTempDir('wal-');
  try {
    await fn(dir);
  } finally {
    await removeTempDir(dir);
  }
}

test('records round-trip, and any flipped byte is detected', () => {
  const buf = Buffer.concat([
    encodeSnapshot({ index: 7, term: 2, voters: [1n, 2n ** 63n + 5n], learners: [3n] }),
    encodeEntry({ index: 8, term: 2, type: 'confChange', data: Buffer.from([1, 2, 3]) }),
    encodeHardState({ term: 3, vote: 2n ** 64n - 1n, commit: 8 }),
  ]);
  const { records, end } = decodeRecords(buf);
  assert.equal(end, buf.length);
  assert.deepEqual(records.map((r) => r.kind), ['snapshot', 'entry', 'hardState']);
  assert.deepEqual(records[0], { kind: 'snapshot', meta: { index: 7, term: 2, voters: [1n, 2n ** 63n + 5n], learners: [3n] } });
  assert.deepEqual(records[2], { kind: 'hardState', hardState: { term: 3, vote: 2n ** 64n - 1n, commit: 8 } });
  for (let i = 0; i < buf.length; i++) {
    const bad = Buffer.from(buf);
    bad[i]! ^= 0x40;
    assert.ok(decodeRecords(bad).end < buf.length, `flip at ${i} noticed`);
  }
});

test('a framed batch is byte for byte the records one by one', () => {
  const es = [entry(1), { ...entry(2), type: 'confChange' as const }, entry(3, 2, '')];
  const hs = { term: 2, vote: 9n, commit: 2 };
  assert.deepEqual(encodeBatch(es, hs), Buffer.concat([...es.map(encodeEntry), encodeHardState(hs)]));
  assert.deepEqual(encodeBatch(es, undefined), Buffer.concat(es.map(encodeEntry)));
});

test('large entries are written from their own buffers, and the bytes are still the records one by one', () => {
  const big = (i: number, n: number): Entry => ({ index: i, term: 3, type: 'normal', data: Buffer.alloc(n, i) });
  const es = [entry(1), big(2, INLINE_MAX_BYTES), entry(3), big(4, 1 << 20), big(5, INLINE_MAX_BYTES - 1)];
  const hs = { term: 3, vote: 1n, commit: 4 };
  const chunks = encodeBatchChunks(es, hs);
  // Packed frames, entry 2's data, packed, entry 4's data, packed (entry 5 is small enough to copy).
  assert.equal(chunks.length, 5);
  assert.equal(chunks[1]!.buffer, es[1]!.data.buffer);
  assert.equal(chunks[3]!.buffer, es[3]!.data.buffer);
  const joined = Buffer.concat(chunks);
  assert.deepEqual(joined, Buffer.concat([...es.map(encodeEntry), encodeHardState(hs)]));
  const { records, end } = decodeRecords(joined);
  assert.equal(end, joined.length);
  assert.deepEqual(records.map((r) => (r.kind === 'entry' ? r.entry.data.length : r.kind)), [2, INLINE_MAX_BYTES, 2, 1 << 20, INLINE_MAX_BYTES - 1, 'hardState']);
  // A batch of small entries only is one buffer, one write.
  assert.equal(encodeBatchChunks([entry(1), entry(2)], hs).length, 1);
  assert.equal(encodeBatchChunks([big(1, 1 << 17)], undefined).length, 2);
});

test('a WAL with large entries replays them intact', () => withDir(async (dir) => {
  let { wal } = Wal.open(dir);
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  wal.append({ term: 1, vote: 1n, commit: 0 }, [entry(1), { index: 2, term: 1, type: 'normal', data }, entry(3)]);
  await wal.close();
  let state;
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
  assert.ok(Buffer.from(state.entries[1]!.data).equals(data));
  assert.equal(state.repairedBytes, 0);
  await wal.close();
}));

test('appends replay in order; a rewritten suffix (new leader) replaces the old one', () => withDir(async (dir) => {
  let { wal, state } = Wal.open(dir);
  assert.equal(state.snapshot, undefined);
  wal.saveSnapshot({ index: 0, term: 0, voters: [1n], learners: [] });
  wal.append({ term: 1, vote: 1n, commit: 0 }, [entry(1), entry(2), entry(3)]);
  wal.append({ term: 2, vote: 1n, commit: 1 }, [entry(2, 2, 'new2')]);
  await wal.close();
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2]);
  assert.equal(Buffer.from(state.entries[1]!.data).toString(), 'new2');
  assert.deepEqual(state.hardState, { term: 2, vote: 1n, commit: 1 });
  assert.equal(state.repairedBytes, 0);
  await wal.close();
}));

test('a torn tail (crash mid-append) is cut off and appending resumes; damage before the tail is refused', () => withDir(async (dir) => {
  let { wal } = Wal.open(dir);
  wal.saveSnapshot({ index: 0, term: 0, voters: [1n], learners: [] });
  wal.append({ term: 1, vote: 1n, commit: 0 }, [entry(1), entry(2)]);
  await wal.close();
  const file = wal.files()[0]!;
  const whole = statSync(file).size;
  const torn = encodeEntry(entry(3)).subarray(0, 11);
  appendFileSync(file, torn);
  let state;
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2]);
  assert.equal(state.repairedBytes, torn.length);
  assert.equal(statSync(file).size, whole, 'the file is truncated to its valid prefix');
  wal.append(undefined, [entry(3)]);
  await wal.close();
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
  await wal.close();

  // Corruption inside a segment that is not the last one: opening fails.
  const small = await makeTempDir('wal-seg-');
  try {
    ({ wal } = Wal.open(small, 200));
    wal.saveSnapshot({ index: 0, term: 0, voters: [1n], learners: [] });
    for (let i = 1; i <= 20; i++) wal.append({ term: 1, vote: 1n, commit: i - 1 }, [entry(i, 1, 'x'.repeat(40))]);
    await wal.close();
    assert.ok(wal.files().length > 2);
    const first = wal.files()[0]!;
    const bytes = readFileSync(first);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(first, bytes);
    assert.throws(() => Wal.open(small, 200), WalCorruptError);
  } finally {
    await removeTempDir(small);
  }
}));

test('segments roll at the size limit; releaseTo deletes the ones a snapshot covers; replay starts at the snapshot', () => withDir(async (dir) => {
  let { wal, state } = Wal.open(dir, 300);
  wal.saveSnapshot({ index: 0, term: 0, voters: [1n], learners: [] });
  for (let i = 1; i <= 30; i++) wal.append({ term: 1, vote: 1n, commit: i - 1 }, [entry(i, 1, 'y'.repeat(50))]);
  await wal.sync();
  const before = wal.files().length;
  assert.ok(before >= 5, `rolled into ${before} segments`);
  wal.saveSnapshot({ index: 20, term: 1, voters: [1n], learners: [] });
  await wal.sync();
  const removed = wal.releaseTo(20);
  assert.ok(removed > 0 && wal.files().length === before - removed);
  await wal.close();
  ({ wal, state } = Wal.open(dir, 300));
  assert.equal(state.snapshot?.index, 20);
  assert.deepEqual(indexes(state.entries), Array.from({ length: 10 }, (_, i) => 21 + i));
  assert.equal(state.hardState?.commit, 29);
  await wal.close();
}));

test('group commit: appends made while an fdatasync runs share the next one', () => withDir(async (dir) => {
  const { wal } = Wal.open(dir);
  wal.saveSnapshot({ index: 0, term: 0, voters: [1n], learners: [] });
  const syncs: Promise<void>[] = [];
  for (let i = 1; i <= 200; i++) {
    wal.append(undefined, [entry(i)]);
    syncs.push(wal.sync());
  }
  await Promise.all(syncs);
  assert.ok(wal.syncs <= 3, `200 appends took ${wal.syncs} fdatasyncs`);
  await wal.close();
  const again = Wal.open(dir);
  assert.equal(again.state.entries.length, 200);
  await again.wal.close();
}));

test('the current segment is zero-filled ahead; a crash leaves zeros after the records, which replay takes as their end', () => withDir(async (dir) => {
  let { wal, state } = Wal.open(dir);
  wal.saveSnapshot({ index: 0, term: 0, voters: [1n], learners: [] });
  wal.append({ term: 1, vote: 1n, commit: 0 }, [entry(1), entry(2)]);
  await wal.sync();
  const file = wal.files()[0]!;
  const records = decodeRecords(readFileSync(file)).end;
  assert.equal(statSync(file).size, PREALLOC_BYTES, 'zero-filled ahead of the records');
  assert.ok(readFileSync(file).subarray(records).every((b) => b === 0));
  // A crash now (no close): the next open finds the records, then zeros: nothing to repair.
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2]);
  assert.equal(state.repairedBytes, 0);
  // Appending resumes right after the records, inside the zeros.
  wal.append({ term: 1, vote: 1n, commit: 2 }, [entry(3)]);
  await wal.sync();
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
  // A torn record inside the zeros (header written, payload not) is cut off as before.
  const torn = encodeEntry(entry(4)).subarray(0, 12);
  const end = decodeRecords(readFileSync(file)).end;
  const bytes = readFileSync(file);
  torn.copy(bytes, end);
  writeFileSync(file, bytes);
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2, 3]);
  assert.equal(state.repairedBytes, PREALLOC_BYTES - end);
  // A clean close cuts the zeros off.
  wal.append(undefined, [entry(4)]);
  await wal.close();
  assert.equal(statSync(file).size, decodeRecords(readFileSync(file)).end);
  ({ wal, state } = Wal.open(dir));
  assert.deepEqual(indexes(state.entries), [1, 2, 3, 4]);
  await wal.close();
}));
