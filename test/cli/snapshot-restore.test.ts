// etcdctl snapshot save against our server, then `etcd-gateway snapshot restore`: the restored
// member serves the same keyspace (same HashKV, same keys).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { etcdctl, hasEtcd, OUR_MAIN, startOurServer } from '../helpers/procs.js';

test('a snapshot saved with etcdctl restores into a new data dir with the same HashKV', async (t) => {
  if (!hasEtcd()) return t.skip('etcdctl is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'snap-'));
  try {
    const src = await startOurServer();
    let hash: string;
    let keys: string;
    let srcClusterId = '';
    try {
      for (let i = 0; i < 50; i++) assert.equal((await etcdctl(src.endpoint, ['put', `k${i}`, `v${i}`])).code, 0);
      assert.equal((await etcdctl(src.endpoint, ['del', 'k7'])).code, 0);
      hash = (await etcdctl(src.endpoint, ['endpoint', 'hashkv', '-w', 'json'])).stdout;
      srcClusterId = (JSON.parse((await etcdctl(src.endpoint, ['endpoint', 'status', '-w', 'json'])).stdout) as [{ Status: { header: { cluster_id: number } } }])[0].Status.header.cluster_id.toString();
      keys = (await etcdctl(src.endpoint, ['get', 'k', '--prefix'])).stdout;
      const saved = await etcdctl(src.endpoint, ['snapshot', 'save', join(dir, 'snap.db')]);
      assert.equal(saved.code, 0, saved.stderr);
      assert.match(saved.stdout, /Snapshot saved at/);
    } finally {
      await src.stop();
    }
    const restored = join(dir, 'restored');
    execFileSync(process.execPath, [OUR_MAIN, 'snapshot', 'restore', join(dir, 'snap.db'), '--data-dir', restored]);
    const dst = await startOurServer({ dataDir: restored });
    try {
      // A new cluster: the restored member's cluster ID differs from the original's.
      const idOf = async (endpoint: string): Promise<string> => (JSON.parse((await etcdctl(endpoint, ['endpoint', 'status', '-w', 'json'])).stdout) as [{ Status: { header: { cluster_id: number } } }])[0].Status.header.cluster_id.toString();
      assert.notEqual(await idOf(dst.endpoint), srcClusterId);
      const h = JSON.parse((await etcdctl(dst.endpoint, ['endpoint', 'hashkv', '-w', 'json'])).stdout) as [{ HashKV: { hash: number } }];
      assert.equal(h[0].HashKV.hash, (JSON.parse(hash) as [{ HashKV: { hash: number } }])[0].HashKV.hash);
      assert.equal((await etcdctl(dst.endpoint, ['get', 'k', '--prefix'])).stdout, keys);
    } finally {
      await dst.stop();
    }
    // A corrupted snapshot is refused and creates nothing.
    const bad = readFileSync(join(dir, 'snap.db'));
    bad[100] = bad[100]! ^ 0xff;
    writeFileSync(join(dir, 'bad.db'), bad);
    assert.throws(() => execFileSync(process.execPath, [OUR_MAIN, 'snapshot', 'restore', join(dir, 'bad.db'), '--data-dir', join(dir, 'r2')], { stdio: 'pipe' }), /checksum mismatch/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
