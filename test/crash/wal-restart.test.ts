// The server's write path through raft and the WAL across restarts: with frequent snapshots
// (--snapshot-count 50), every write survives clean restarts, a restarted member is elected in
// a new term, and the WAL directory holds the log.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PutRequest, RangeRequest, StatusRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { decodeRecords } from '../../src/core/wal/records.js';
import { startGateway } from '../gateway/harness.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';

test('300 writes with a snapshot every 50 entries survive two restarts; the term grows per start', async () => {
  const dir = await makeTempDir('wal-restart-');
  try {
    const terms: bigint[] = [];
    for (let round = 0; round < 3; round++) {
      const g = await startGateway(['--snapshot-count', '50'], dir);
      try {
        terms.push((await g.backend.status(StatusRequest.fromPartial({}))).raftTerm);
        const writes = Array.from({ length: 100 }, (_, i) => g.backend.put(PutRequest.fromPartial({ key: Buffer.from(`k/${round}/${i}`), value: Buffer.from(`v${round}.${i}`) })));
        await Promise.all(writes);
        const all = await g.backend.range(RangeRequest.fromPartial({ key: Buffer.from('k/'), rangeEnd: Buffer.from('k0'), countOnly: true }));
        assert.equal(all.count, BigInt(100 * (round + 1)));
      } finally {
        await g.close();
      }
    }
    assert.deepEqual(terms, [2n, 3n, 4n]);
    const walDir = join(dir, 'member', 'wal');
    const wal = readdirSync(walDir);
    assert.ok(wal.length >= 1 && wal.every((f) => f.endsWith('.wal')), wal.join(','));
    // Snapshots were taken: the newest snapshot marker is well past the first rounds.
    const snaps = wal.flatMap((f) => decodeRecords(readFileSync(join(walDir, f))).records).filter((r) => r.kind === 'snapshot');
    const newest = Math.max(...snaps.map((r) => (r.kind === 'snapshot' ? r.meta.index : 0)));
    assert.ok(newest >= 250, `newest snapshot at ${newest}`);
    const g = await startGateway([], dir);
    try {
      const r = await g.backend.range(RangeRequest.fromPartial({ key: Buffer.from('k/2/99') }));
      assert.equal(r.kvs[0]?.value.toString(), 'v2.99');
    } finally {
      await g.close();
    }
  } finally {
    await removeTempDir(dir);
  }
});
