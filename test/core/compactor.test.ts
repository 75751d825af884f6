// The auto compactors on a hand-driven clock (etcd 3.4's schedule), then through a real server
// whose compactions go through raft: reads below the compacted revision fail as after a client's
// Compact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdError } from '../../src/backend/errors.js';
import { loadConfig } from '../../src/config/index.js';
import { startCompactor, type AutoCompaction } from '../../src/core/compactor.js';
import type { Clock } from '../../src/util/clock.js';
import { startGateway } from '../gateway/harness.js';

/** A clock whose timers run only when advanced, one ms at a time, promises settled in between. */
class ManualClock implements Clock {
  now = 0;
  private timers: { at: number; fn: () => void }[] = [];
  nowMs(): number {
    return this.now;
  }
  after(ms: number, fn: () => void): () => void {
    const t = { at: this.now + ms, fn };
    this.timers.push(t);
    return () => { this.timers = this.timers.filter((x) => x !== t); };
  }
  async advance(ms: number, step = 100): Promise<void> {
    for (const end = this.now + ms; this.now < end;) {
      this.now += step;
      for (const t of this.timers.filter((x) => x.at <= this.now)) {
        this.timers = this.timers.filter((x) => x !== t);
        t.fn();
      }
      await new Promise((r) => setImmediate(r));
    }
  }
}

function harness(cfg: AutoCompaction, opts: { leader?: () => boolean } = {}) {
  const clock = new ManualClock();
  let rev = 1;
  let compactRev = 0;
  const calls: { at: number; rev: number }[] = [];
  const stop = startCompactor(cfg, {
    clock,
    currentRev: () => rev,
    isLeader: opts.leader ?? (() => true),
    compact: async (r) => {
      calls.push({ at: clock.now, rev: r });
      if (r <= compactRev) throw new EtcdError('compacted');
      compactRev = r;
    },
  });
  return { clock, calls, stop, setRev: (r: number) => { rev = r; } };
}

test('periodic: first compaction one retention after start, at the revision of then; then every retention (<1h)', async () => {
  const h = harness({ mode: 'periodic', retentionMs: 10_000 });
  // One revision per second: at time t the revision is 1 + t/1000.
  for (let t = 0; t < 35_000; t += 1000) {
    h.setRev(1 + t / 1000);
    await h.clock.advance(1000);
  }
  h.stop();
  // Samples every 1 s (a tenth of the retention), 11 kept: the first compaction uses the start's
  // revision, later ones the oldest sample, a retention before the last one (as etcd's window).
  assert.deepEqual(h.calls, [{ at: 10_000, rev: 1 }, { at: 20_000, rev: 9 }, { at: 30_000, rev: 19 }]);
});

test('periodic over an hour compacts every hour, keeping the whole retention', async () => {
  const h = harness({ mode: 'periodic', retentionMs: 3 * 3_600_000 });
  await h.clock.advance(3 * 3_600_000 - 60_000, 60_000);
  assert.equal(h.calls.length, 0);
  await h.clock.advance(5 * 3_600_000, 60_000);
  h.stop();
  assert.deepEqual(h.calls.map((c) => c.at / 3_600_000), [3, 4, 5, 6, 7]);
});

test('revision: every check compacts at current - retention when that moved; nothing while not leader', async () => {
  let leader = false;
  const h = harness({ mode: 'revision', retention: 5, checkIntervalMs: 1000 }, { leader: () => leader });
  h.setRev(20);
  await h.clock.advance(3000);
  assert.equal(h.calls.length, 0);
  leader = true;
  await h.clock.advance(1000);
  assert.deepEqual(h.calls, [{ at: 4000, rev: 15 }]);
  await h.clock.advance(3000); // no new revision: no new compaction
  assert.equal(h.calls.length, 1);
  h.setRev(22);
  await h.clock.advance(1000);
  h.stop();
  await h.clock.advance(5000);
  assert.deepEqual(h.calls.map((c) => c.rev), [15, 17]);
});

test('flags: etcd 3.4\'s reading of the retention', () => {
  const ac = (args: string[]) => {
    const r = loadConfig(args, {});
    assert.ok(r.kind === 'run');
    return r.config.autoCompaction;
  };
  assert.equal(ac([]), undefined);
  assert.deepEqual(ac(['--auto-compaction-retention', '2']), { mode: 'periodic', retentionMs: 2 * 3_600_000 });
  assert.deepEqual(ac(['--auto-compaction-retention', '90m']), { mode: 'periodic', retentionMs: 90 * 60_000 });
  assert.deepEqual(ac(['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1000']), { mode: 'revision', retention: 1000, checkIntervalMs: 300_000 });
  assert.throws(() => ac(['--auto-compaction-mode', 'foo']), { message: 'unknown auto-compaction-mode "foo"' });
  assert.throws(() => ac(['--auto-compaction-retention', '1x']), /not a duration/);
});

/** Range at `rev` through the gateway: "ok" or the error message. */
async function rangeAt(url: string, rev: number): Promise<string> {
  const r = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'aw==', revision: String(rev) }) });
  const body = (await r.json()) as { message?: string };
  return r.status === 200 ? 'ok' : body.message ?? String(r.status);
}

async function putN(url: string, n: number): Promise<number> {
  let rev = 0;
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: 'aw==', value: Buffer.from(String(i)).toString('base64') }) });
    rev = Number(((await r.json()) as { header: { revision: string } }).header.revision);
  }
  return rev;
}

test('a real server in revision mode keeps the last N revisions', async () => {
  const gw = await startGateway(['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '5', '--auto-compaction-check-interval', '200ms']);
  try {
    const rev = await putN(gw.url, 20);
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(await rangeAt(gw.url, rev - 5), 'ok');
    assert.equal(await rangeAt(gw.url, rev - 6), 'etcdserver: mvcc: required revision has been compacted');
  } finally {
    await gw.close();
  }
});

test('a real server in periodic mode compacts once the retention has passed', async () => {
  const gw = await startGateway(['--auto-compaction-retention', '1s']);
  try {
    const rev = await putN(gw.url, 5);
    assert.equal(await rangeAt(gw.url, 2), 'ok');
    // Within a few retentions the revision sampled a retention ago (rev: nothing written since)
    // is compacted (polled: the first compaction may still catch an earlier sample on a busy machine).
    const compacted = 'etcdserver: mvcc: required revision has been compacted';
    for (let t = 0; t < 6000 && await rangeAt(gw.url, rev - 1) !== compacted; t += 250) await new Promise((r) => setTimeout(r, 250));
    assert.equal(await rangeAt(gw.url, rev - 1), compacted);
    assert.equal(await rangeAt(gw.url, rev), 'ok');
  } finally {
    await gw.close();
  }
});
