// A concurrent workload of reads, writes and compare-and-swaps (txn) through the v3 API, spread
// over all members of a 3-member cluster of ours while its leader is SIGKILLed and restarted; the
// recorded history must be linearizable per key (test/helpers/linearizability.ts), and afterwards
// every member holds the same data (HashKV at one revision).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkRegisters, type HistoryOp, type RegisterOp } from '../helpers/linearizability.js';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, eventually, hashKV, memberIndex, v3 } from './helpers.js';

let c: OurCluster;
before(async () => {
  c = await startOurCluster(3);
});
after(async () => {
  await c?.stop();
});

const KEYS = ['r0', 'r1', 'r2'];
const CLIENTS = 6;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString();

async function perform(endpoint: string, key: string, op: RegisterOp): Promise<RegisterOp> {
  const timeout = 4000;
  switch (op.kind) {
    case 'read': {
      const r = await v3(endpoint, '/v3/kv/range', { key: b64(key) }, timeout);
      const kv = (r.kvs as { value?: string }[] | undefined)?.[0];
      return { kind: 'read', value: kv === undefined ? undefined : unb64(kv.value) };
    }
    case 'write':
      await v3(endpoint, '/v3/kv/put', { key: b64(key), value: b64(op.value) }, timeout);
      return op;
    case 'cas': {
      const r = await v3(endpoint, '/v3/kv/txn', {
        compare: [{ key: b64(key), target: 'VALUE', result: 'EQUAL', value: b64(op.expected) }],
        success: [{ requestPut: { key: b64(key), value: b64(op.value) } }],
      }, timeout);
      return { ...op, ok: r.succeeded === true };
    }
  }
}

test('reads, writes and CAS during a leader SIGKILL and restart are linearizable', async (t) => {
  const all = c.members.map((m) => m.endpoint);
  await eventually('a leader', () => agreedLeader(c.running()));
  const history: HistoryOp[] = [];
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  let stop = false;
  let seq = 0;
  let rng = 12345;
  const rand = (n: number): number => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng % n;
  };
  const client = async (id: number): Promise<void> => {
    const last = new Map<string, string>();
    while (!stop) {
      const key = KEYS[rand(KEYS.length)]!;
      const endpoint = all[rand(all.length)]!;
      const dice = rand(10);
      const value = `c${id}-${++seq}`;
      const op: RegisterOp = dice < 4 ? { kind: 'read', value: undefined }
        : dice < 7 ? { kind: 'write', value }
        : { kind: 'cas', expected: last.get(key) ?? 'none', value, ok: false };
      const call = now();
      try {
        const done = await perform(endpoint, key, op);
        history.push({ key, call, ret: now(), op: done, client: id });
        if (done.kind === 'read' && done.value !== undefined) last.set(key, done.value);
        if (done.kind === 'write' || (done.kind === 'cas' && done.ok)) last.set(key, done.value);
      } catch {
        // No answer (refused, timed out, an error after proposing): the outcome is unknown.
        history.push({ key, call, ret: undefined, op, client: id });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
  await new Promise((r) => setTimeout(r, 1500));
  const leader = await eventually('a leader', () => agreedLeader(c.running()));
  const li = await memberIndex(c, leader);
  await c.kill9(li);
  await new Promise((r) => setTimeout(r, 2500));
  await c.restart(li);
  await new Promise((r) => setTimeout(r, 1000));
  stop = true;
  await Promise.all(clients);
  // Final reads on every member (after everything else returned) pin down each key's last value.
  for (const key of KEYS) {
    for (const e of all) {
      const call = now();
      const op = await perform(e, key, { kind: 'read', value: undefined });
      history.push({ key, call, ret: now(), op });
    }
  }
  const acked = history.filter((h) => h.ret !== undefined && h.op.kind !== 'read').length;
  assert.ok(acked > 50, `enough acknowledged writes (${acked} of ${history.length} ops)`);
  const unknown = history.filter((h) => h.ret === undefined).length;
  const casOk = history.filter((h) => h.op.kind === 'cas' && h.op.ok).length;
  t.diagnostic(`${history.length} ops: ${acked} acknowledged writes/CAS (${casOk} CAS succeeded), ${unknown} unknown outcomes`);
  const res = checkRegisters(history);
  assert.ok(res.ok, `not linearizable on ${res.key}: ${JSON.stringify(res.ops)}`);
  const rev = Number((await v3(all[0]!, '/v3/kv/range', { key: b64('r0') })).header.revision);
  const hashes = await Promise.all(all.map((e) => eventually(`hashkv on ${e}`, () => hashKV(e, rev))));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, JSON.stringify(hashes));
});
