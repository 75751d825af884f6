// Writes are answered before their LMDB commit lands, so every read path of the storage must see
// staged records: single records, scans (watch catch-up, hashes), and compaction's removals —
// before the commit, while it is in flight, and after it, with nothing seen twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRecord, type DecodedRecord } from '../../src/core/mvcc/record.js';
import { LmdbStorage } from '../../src/core/storage/lmdb.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

/** A put's record whose value is `v` (the key names the revision, so a mixed-up record shows). */
function rec(v: string | Buffer, main = 0): DecodedRecord {
  return { kv: { key: Buffer.from(`k${main}`), createRev: main, modRev: main, version: 1, lease: 0n, value: Buffer.from(v) }, tombstone: false };
}

function scan(st: LmdbStorage, from = 0, to = Number.MAX_SAFE_INTEGER): string[] {
  return [...st.scanRecords(from, to)].map((r) => `${r.main}.${r.sub}=${decodeRecord(r.value).kv.value.toString()}`);
}

test('scans and gets see staged records before, during and after their commit, once each', async () => {
  const dir = await makeTempDir('lmdb-overlay-');
  const st = new LmdbStorage(dir);
  try {
    st.stage({ t: 'rec', main: 2, sub: 0, record: rec('a') });
    st.stage({ t: 'rec', main: 2, sub: 1, record: rec('b') });
    await st.commit();
    st.stage({ t: 'rec', main: 3, sub: 0, record: rec('c') });
    assert.deepEqual(scan(st), ['2.0=a', '2.1=b', '3.0=c'], 'staged, not committed');
    const inFlight = st.commit();
    st.stage({ t: 'rec', main: 4, sub: 0, record: rec('d') });
    assert.deepEqual(scan(st), ['2.0=a', '2.1=b', '3.0=c', '4.0=d'], 'one commit in flight, one record staged');
    assert.deepEqual(scan(st, 3, 4), ['3.0=c'], 'range bounds apply to staged records');
    assert.equal(decodeRecord(st.getRecord(4, 0)!).kv.value.toString(), 'd');
    // Staged after a read made the overlay: the next read sees it too.
    st.stage({ t: 'rec', main: 5, sub: 0, record: rec('e') });
    assert.equal(decodeRecord(st.getRecord(5, 0)!).kv.value.toString(), 'e');
    assert.deepEqual(scan(st, 4, 6), ['4.0=d', '5.0=e']);
    await inFlight;
    assert.deepEqual(scan(st), ['2.0=a', '2.1=b', '3.0=c', '4.0=d', '5.0=e'], 'nothing twice after the commit landed');
    await st.commit();
    // Compaction removes an old record: hidden at once, gone from LMDB after the commit.
    st.stage({ t: 'rec', main: 2, sub: 0, record: null });
    assert.equal(st.getRecord(2, 0), undefined);
    assert.deepEqual(scan(st), ['2.1=b', '3.0=c', '4.0=d', '5.0=e']);
    await st.commit();
    assert.deepEqual(scan(st), ['2.1=b', '3.0=c', '4.0=d', '5.0=e']);
  } finally {
    await st.close();
    await removeTempDir(dir);
  }
});

test('one commit of many records, small (through the shared scratch buffer) and big, stores each one\'s own bytes', async () => {
  const dir = await makeTempDir('lmdb-scratch-');
  const st = new LmdbStorage(dir);
  try {
    const big = (i: number): Buffer => Buffer.alloc(100_000 + i, String.fromCharCode(97 + i));
    for (let i = 0; i < 50; i++) st.stage({ t: 'rec', main: 10 + i, sub: 0, record: rec(i % 10 === 0 ? big(i / 10) : `v${i}`, 10 + i) });
    await st.commit();
    for (let i = 0; i < 50; i++) {
      const r = decodeRecord(st.getRecord(10 + i, 0)!);
      assert.equal(r.kv.key.toString(), `k${10 + i}`);
      assert.ok(r.kv.value.equals(i % 10 === 0 ? big(i / 10) : Buffer.from(`v${i}`)), `record ${i}`);
    }
  } finally {
    await st.close();
    await removeTempDir(dir);
  }
});

test('commits asked for while one runs fold into one next commit, which lands everything staged by then', async () => {
  const dir = await makeTempDir('lmdb-fold-');
  let transactions = 0;
  const st = new LmdbStorage(dir, () => transactions++);
  try {
    st.stage({ t: 'rec', main: 2, sub: 0, record: rec('a') });
    const first = st.commit();
    st.stage({ t: 'rec', main: 3, sub: 0, record: rec('b') });
    const second = st.commit();
    st.stage({ t: 'rec', main: 4, sub: 0, record: rec('c') });
    st.stage({ t: 'meta', name: 'fold-test', value: Buffer.from('x') });
    const third = st.commit();
    assert.equal(third, second, 'the second and third commit are one');
    assert.notEqual(second, first);
    assert.deepEqual(scan(st), ['2.0=a', '3.0=b', '4.0=c'], 'staged records are read while their commits wait');
    await first;
    assert.equal(transactions, 1);
    await third;
    assert.equal(transactions, 2, 'two LMDB transactions for three commits');
    assert.deepEqual(scan(st), ['2.0=a', '3.0=b', '4.0=c'], 'once each after both landed');
    assert.equal(st.getMeta('fold-test')?.toString(), 'x');
    // Nothing in flight: the next commit starts on its own (once the interval since the last start is over).
    st.stage({ t: 'rec', main: 5, sub: 0, record: rec('d') });
    await st.commit();
    assert.equal(transactions, 3);
  } finally {
    await st.close();
  }
  // Everything reached the file: a fresh open reads it without any overlay.
  const again = new LmdbStorage(dir);
  try {
    assert.deepEqual(scan(again), ['2.0=a', '3.0=b', '4.0=c', '5.0=d']);
  } finally {
    await again.close();
    await removeTempDir(dir);
  }
});

test('under load a commit starts at most once per interval; COMMIT_NOW_OPS staged writes, or close(), start it sooner', async () => {
  const dir = await makeTempDir('lmdb-interval-');
  let transactions = 0;
  const st = new LmdbStorage(dir, () => transactions++, 60_000);
  const many = 10_000;
  try {
    st.stage({ t: 'rec', main: 2, sub: 0, record: rec('a') });
    await st.commit();
    assert.equal(transactions, 1, 'an idle store commits at once');
    st.stage({ t: 'rec', main: 3, sub: 0, record: rec('b') });
    const waiting = st.commit();
    let landed = false;
    void waiting.then(() => (landed = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(landed, false, 'the next commit waits out the interval');
    assert.equal(transactions, 1);
    assert.deepEqual(scan(st), ['2.0=a', '3.0=b'], 'a waiting commit\'s records are read from the overlay');
    for (let i = 0; i < many; i++) st.stage({ t: 'rec', main: 100 + i, sub: 0, record: rec(`v${i}`, 100 + i) });
    assert.equal(st.commit(), waiting, 'still the one waiting commit');
    await waiting;
    assert.equal(transactions, 2, `${many} staged writes started it before the interval was over`);
    st.stage({ t: 'rec', main: 20_000, sub: 0, record: rec('c', 20_000) });
    void st.commit();
  } finally {
    await st.close();
  }
  assert.equal(transactions, 3, 'close() started the waiting commit');
  const again = new LmdbStorage(dir);
  try {
    const all = scan(again);
    assert.equal(all.length, 2 + many + 1);
    assert.deepEqual([all[0], all[1], all[all.length - 1]], ['2.0=a', '3.0=b', '20000.0=c']);
  } finally {
    await again.close();
    await removeTempDir(dir);
  }
});

test('after a failed commit no later commit lands: the store stays at its last good commit for the WAL replay', async () => {
  const dir = await makeTempDir('lmdb-failed-');
  let st = new LmdbStorage(dir);
  const meta = (v: string): Buffer => Buffer.from(v);
  try {
    st.stage({ t: 'rec', main: 2, sub: 0, record: rec('a', 2) });
    st.stage({ t: 'meta', name: 'consistentIndex', value: meta('2') });
    await st.commit();
    // The disk fails during the next commit (a write inside its transaction throws).
    const db = (st as unknown as { records: { putSync: (...a: unknown[]) => unknown } }).records;
    const putSync = db.putSync;
    db.putSync = () => { throw new Error('injected: no space left on device'); };
    st.stage({ t: 'rec', main: 3, sub: 0, record: rec('b', 3) });
    st.stage({ t: 'meta', name: 'consistentIndex', value: meta('3') });
    await assert.rejects(st.commit(), /injected/);
    // The disk works again: a later commit (a newer consistent index over the lost record 3)
    // must still not land, nor may close() land one.
    db.putSync = putSync;
    st.stage({ t: 'rec', main: 4, sub: 0, record: rec('c', 4) });
    st.stage({ t: 'meta', name: 'consistentIndex', value: meta('4') });
    await assert.rejects(st.commit(), /injected/);
    st.stage({ t: 'rec', main: 5, sub: 0, record: rec('d', 5) });
    void st.commit().catch(() => undefined);
    await st.close();
    st = new LmdbStorage(dir);
    assert.equal(st.getMeta('consistentIndex')?.toString(), '2');
    assert.deepEqual(scan(st), ['2.0=a']);
  } finally {
    await st.close();
    await removeTempDir(dir);
  }
});
