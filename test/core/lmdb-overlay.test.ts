// Writes are answered before their LMDB commit lands, so every read path of the storage must see
// staged records: single records, scans (watch catch-up, hashes), and compaction's removals —
// before the commit, while it is in flight, and after it, with nothing seen twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LmdbStorage } from '../../src/core/storage/lmdb.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

function rec(s: string): Buffer {
  return Buffer.from(s);
}

function scan(st: LmdbStorage, from = 0, to = Number.MAX_SAFE_INTEGER): string[] {
  return [...st.scanRecords(from, to)].map((r) => `${r.main}.${r.sub}=${r.value.toString()}`);
}

test('scans and gets see staged records before, during and after their commit, once each', async () => {
  const dir = await makeTempDir('lmdb-overlay-');
  const st = new LmdbStorage(dir);
  try {
    st.stage({ t: 'rec', main: 2, sub: 0, value: rec('a') });
    st.stage({ t: 'rec', main: 2, sub: 1, value: rec('b') });
    await st.commit();
    st.stage({ t: 'rec', main: 3, sub: 0, value: rec('c') });
    assert.deepEqual(scan(st), ['2.0=a', '2.1=b', '3.0=c'], 'staged, not committed');
    const inFlight = st.commit();
    st.stage({ t: 'rec', main: 4, sub: 0, value: rec('d') });
    assert.deepEqual(scan(st), ['2.0=a', '2.1=b', '3.0=c', '4.0=d'], 'one commit in flight, one record staged');
    assert.deepEqual(scan(st, 3, 4), ['3.0=c'], 'range bounds apply to staged records');
    assert.equal(st.getRecord(4, 0)?.toString(), 'd');
    await inFlight;
    assert.deepEqual(scan(st), ['2.0=a', '2.1=b', '3.0=c', '4.0=d'], 'nothing twice after the commit landed');
    // Compaction removes an old record: hidden at once, gone from LMDB after the commit.
    st.stage({ t: 'rec', main: 2, sub: 0, value: null });
    assert.equal(st.getRecord(2, 0), undefined);
    assert.deepEqual(scan(st), ['2.1=b', '3.0=c', '4.0=d']);
    await st.commit();
    assert.deepEqual(scan(st), ['2.1=b', '3.0=c', '4.0=d']);
  } finally {
    await st.close();
    await removeTempDir(dir);
  }
});
