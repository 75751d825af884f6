// Periodic auto compaction with a short retention on real etcd 3.4 and on our binary: after a
// burst of writes and a few retentions of quiet, both have compacted at the last revision.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { etcdctl, hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

const skip = !hasEtcd() && 'needs /usr/bin/etcd and /usr/bin/etcdctl';
let real: Server;
let ours: Server;

before(async () => {
  if (skip !== false) return;
  const args = ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '1s'];
  [real, ours] = await Promise.all([startRealEtcd({ enableV2: false, extraArgs: args }), startOurServer({ extraArgs: args })]);
});
after(async () => {
  await Promise.all([real?.stop(), ours?.stop()]);
});

/** etcdctl get at a revision: the value, or the error line. */
async function getAt(s: Server, rev: number): Promise<string> {
  const r = await etcdctl(s.endpoint, ['get', 'k', `--rev=${rev}`, '--print-value-only']);
  return r.code === 0 ? r.stdout : r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? r.stderr;
}

test('periodic 1s: both compact up to the last revision once writes stop', { skip }, async () => {
  const seen: string[][] = [];
  for (const s of [ours, real]) {
    for (let i = 1; i <= 10; i++) assert.equal((await etcdctl(s.endpoint, ['put', 'k', `v${i}`])).stdout, 'OK\n');
    // Revision 11 is the last (1 + 10 puts). Wait until rev 10 is compacted, at most 8 s.
    for (let t = 0; t < 8000 && !(await getAt(s, 10)).includes('compacted'); t += 250) await new Promise((r) => setTimeout(r, 250));
    seen.push([await getAt(s, 10), await getAt(s, 11)]);
  }
  assert.deepEqual(seen[0], seen[1]);
  assert.deepEqual(seen[0], ['Error: etcdserver: mvcc: required revision has been compacted', 'v10\n']);
});
