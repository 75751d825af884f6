// --quota-backend-bytes and the NOSPACE alarm, the same steps against real etcd 3.4 (v2 served
// over its v3 store, --experimental-enable-v2v3, as ours is) and against our binary with the same
// 1 MiB quota: fill until refused, the alarm listed, every protocol's refusal, deletes still
// allowed, /health failing, then compaction + defragment + `alarm disarm` and writes work again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseProm } from '../helpers/prom.js';
import { etcdctl, hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

const skip = !hasEtcd() && 'needs /usr/bin/etcd and /usr/bin/etcdctl';
const QUOTA = 1024 * 1024;
const VALUE = 'x'.repeat(100_000);
let real: Server;
let ours: Server;

before(async () => {
  if (skip !== false) return;
  [real, ours] = await Promise.all([
    // etcd 3.4's /health and /version drop the connection in v2v3 mode: wait on /v2/keys/ instead.
    startRealEtcd({ extraArgs: ['--quota-backend-bytes', String(QUOTA), '--experimental-enable-v2v3', '/v2/'], healthPath: '/v2/keys/' }),
    startOurServer({ extraArgs: ['--quota-backend-bytes', String(QUOTA)] }),
  ]);
});
after(async () => {
  await Promise.all([real?.stop(), ours?.stop()]);
});

/** stdout, or etcdctl's "Error: ..." line (retry warnings before it differ in timing). */
async function ctl(s: Server, args: string[], stdin?: string): Promise<string> {
  const r = await etcdctl(s.endpoint, args, stdin !== undefined ? { stdin } : {});
  if (r.code === 0) return r.stdout;
  return r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? `exit ${r.code}: ${r.stderr}`;
}

async function memberHex(s: Server): Promise<string> {
  // Read as text: the ID does not fit a JSON number's double.
  const m = /"member_id":(\d+)/.exec((await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json'])).stdout);
  assert.ok(m !== null);
  return m[1]!;
}

async function http(s: Server, method: string, path: string, body?: string, form = false): Promise<string> {
  const r = await fetch(`${s.clientUrl}${path}`, { method, ...(body !== undefined ? { body } : {}), ...(form ? { headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}) });
  return `${r.status} ${await r.text()}`;
}

/** The whole scenario on one server: what it printed at each step (member IDs replaced). */
async function scenario(s: Server): Promise<{ seen: string[]; filled: number; health: string }> {
  const seen: string[] = [];
  const id = await memberHex(s);
  const norm = (t: string): string => t.replaceAll(id, '<ID>');
  let filled = 0;
  for (; filled < 40; filled++) {
    const out = await ctl(s, ['put', `big${filled}`, VALUE]);
    if (out !== 'OK\n') {
      seen.push(out);
      break;
    }
  }
  seen.push(norm(await ctl(s, ['alarm', 'list'])));
  seen.push(await ctl(s, ['put', 'small', 'x']));
  seen.push(await ctl(s, ['txn'], '\n\nput t 1\n\n'));
  seen.push(await ctl(s, ['lease', 'grant', '100']));
  seen.push(await http(s, 'POST', '/v3/kv/put', '{"key":"YQ==","value":"YQ=="}'));
  seen.push(await http(s, 'PUT', '/v2/keys/a', 'value=1', true));
  // (etcd 3.4 in v2v3 mode drops /health requests: only ours is asked.)
  const health = s === ours ? await http(s, 'GET', '/health') : '';
  const quota = parseProm(await (await fetch(`${s.clientUrl}/metrics`)).text()).find((m) => m.name === 'etcd_server_quota_backend_bytes');
  seen.push(`quota metric ${quota?.value}`);
  // Deletes free space and are allowed under the alarm; the space comes back after compaction.
  for (let i = 0; i < filled; i++) await ctl(s, ['del', `big${i}`]);
  seen.push(await ctl(s, ['put', 'small', 'x']));
  const st = JSON.parse((await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json'])).stdout) as { Status: { header: { revision: number } } }[];
  seen.push((await ctl(s, ['compact', String(st[0]!.Status.header.revision)])).replace(/\d+/, '<REV>'));
  seen.push((await ctl(s, ['defrag'])).replace(s.endpoint, '<EP>'));
  seen.push(await ctl(s, ['put', 'small', 'x'])); // still refused: the alarm stays until disarmed
  seen.push(norm(await ctl(s, ['alarm', 'disarm'])));
  seen.push(await ctl(s, ['alarm', 'list']));
  seen.push(await ctl(s, ['put', 'small', 'x']));
  seen.push(await http(s, 'PUT', '/v2/keys/a', 'value=1', true));
  return { seen, filled, health };
}

test('NOSPACE: the same refusals, alarm list and recovery as etcd 3.4 with a 1 MiB quota', { skip }, async () => {
  const r = await scenario(real);
  const o = await scenario(ours);
  // v2 answers carry the store index: compare them without it.
  const v2 = (t: string): string => t.replace(/"(modifiedIndex|createdIndex|index)":\d+/g, '"$1":N');
  assert.deepEqual(o.seen.map(v2), r.seen.map(v2));
  assert.equal(o.seen[0], 'Error: etcdserver: mvcc: database space exceeded');
  assert.equal(o.seen[1], 'memberID:<ID> alarm:NOSPACE \n');
  assert.match(o.seen[5]!, /^429 \{"error":"etcdserver: mvcc: database space exceeded",.*"code":8\}/);
  assert.match(o.seen[6]!, /^500 \{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: mvcc: database space exceeded"/);
  assert.equal(o.seen.at(-2), 'OK\n');
  // Both fill about the same: etcd counts its file size, we count LMDB's live pages.
  console.log(`# 100 kB values until NOSPACE at a 1 MiB quota: etcd ${r.filled}, ours ${o.filled}`);
  assert.ok(o.filled >= 7 && o.filled <= 12, `ours took ${o.filled} 100 kB values (etcd ${r.filled})`);
  assert.equal(o.health, '503 {"health":"false","reason":"ALARM NOSPACE"}\n');
});
