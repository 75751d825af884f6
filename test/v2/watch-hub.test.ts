// The shared v2 watch hub, through real HTTP: thousands of long polls cost one backend watcher,
// a start index older than the hub's ring falls back to a watch of its own (and still works),
// a stream that is not read is dropped at the per-watcher bound, and the store statistics count
// the open watches.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { after, before, test } from 'node:test';
import { V2Store } from '../../src/v2/index.js';
import { SUBSCRIBER_QUEUE_MAX } from '../../src/v2/watch-hub.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';
import { startGateway, type GatewayServer } from '../gateway/harness.js';

let s: GatewayServer;
before(async () => { s = await startGateway(); });
after(async () => { await s.close(); });

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function put(base: string, path: string, value: string): Promise<number> {
  const r = await fetch(`${base}/v2/keys${path}`, { method: 'PUT', body: `value=${encodeURIComponent(value)}`, headers: FORM });
  await r.text();
  return Number(r.headers.get('x-etcd-index'));
}

async function storeStats(base: string): Promise<Record<string, number>> {
  return (await (await fetch(`${base}/v2/stats/store`)).json()) as Record<string, number>;
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A long poll on its own connection; resolves with the body once the server answers. */
function longPoll(agent: http.Agent, url: string): { done: Promise<string>; abort: () => void } {
  let req!: http.ClientRequest;
  const done = new Promise<string>((resolve, reject) => {
    req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { done, abort: () => req.destroy() };
}

test('2,000 long polls on one key share the hub\'s one backend watcher, and all get the event', async () => {
  const N = 2000;
  const baseline = s.backend.watcherCount();
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const polls = Array.from({ length: N }, () => longPoll(agent, `${s.url}/v2/keys/shared/k?wait=true`));
  await until('all polls registered', async () => (await storeStats(s.url)).watchers === N);
  assert.equal(s.backend.watcherCount(), baseline, 'no backend watcher per long poll');
  const index = await put(s.url, '/shared/k', 'v1');
  const bodies = await Promise.all(polls.map((p) => p.done));
  for (const b of bodies) {
    const ev = JSON.parse(b) as { action: string; node: { key: string; value: string; modifiedIndex: number } };
    assert.deepEqual([ev.action, ev.node.key, ev.node.value, ev.node.modifiedIndex], ['set', '/shared/k', 'v1', index]);
  }
  await until('watchers back to 0', async () => (await storeStats(s.url)).watchers === 0);
  agent.destroy();
});

test('a client going away removes its subscription at once', async () => {
  const agent = new http.Agent({ keepAlive: false });
  const polls = Array.from({ length: 10 }, () => longPoll(agent, `${s.url}/v2/keys/gone?wait=true&recursive=true`));
  await until('registered', async () => (await storeStats(s.url)).watchers === 10);
  for (const p of polls) {
    p.abort();
    p.done.catch(() => undefined);
  }
  await until('unregistered', async () => (await storeStats(s.url)).watchers === 0);
  agent.destroy();
});

test('waitIndex inside the hub\'s ring replays from it; the first event at or after the index wins', async () => {
  const i1 = await put(s.url, '/ring/a', '1');
  await put(s.url, '/ring/b', '2');
  const baseline = s.backend.watcherCount();
  const r = await fetch(`${s.url}/v2/keys/ring?wait=true&recursive=true&waitIndex=${i1 + 1}`);
  const ev = (await r.json()) as { action: string; node: { key: string; value: string } };
  assert.deepEqual([ev.action, ev.node.key, ev.node.value], ['set', '/ring/b', '2']);
  assert.equal(s.backend.watcherCount(), baseline);
});

test('a waitIndex older than the hub (written before a restart) is served by a watch of its own', async () => {
  const dir = await makeTempDir('hub-restart-');
  try {
    let g = await startGateway([], dir);
    const idx = await put(g.url, '/old/k', 'before');
    await g.close();
    g = await startGateway([], dir);
    try {
      const baseline = g.backend.watcherCount();
      const p = fetch(`${g.url}/v2/keys/old/k?wait=true&waitIndex=${idx}`);
      const ev = (await (await p).json()) as { action: string; node: { value: string; modifiedIndex: number } };
      assert.deepEqual([ev.action, ev.node.value, ev.node.modifiedIndex], ['set', 'before', idx]);
      // A live poll from an index the hub covers still shares the hub's watcher.
      const live = longPoll(new http.Agent(), `${g.url}/v2/keys/old/k?wait=true`);
      await until('registered', async () => (await storeStats(g.url)).watchers === 1);
      assert.equal(g.backend.watcherCount(), baseline);
      await put(g.url, '/old/k', 'after');
      assert.equal((JSON.parse(await live.done) as { node: { value: string } }).node.value, 'after');
    } finally {
      await g.close();
    }
  } finally {
    await removeTempDir(dir);
  }
});

test(`a stream that is not read is dropped after ${SUBSCRIBER_QUEUE_MAX} pending events`, async () => {
  const store = new V2Store(s.backend, '/bound');
  await store.start();
  try {
    const ac = new AbortController();
    const w = await store.watch({ path: '/s', recursive: true, waitIndex: 0, stream: true }, ac.signal);
    const writes = SUBSCRIBER_QUEUE_MAX + 20;
    for (let i = 0; i < writes; i++) await store.write({ kind: 'set', path: `/s/k${i}`, value: String(i), dir: false });
    await until('the hub has seen every write', () => store.storeStatsJson().includes('"watchers":0'));
    const got: string[] = [];
    for await (const ev of w.events) got.push(ev.node.key);
    // The queued events are still delivered, in order, then the stream ends.
    assert.equal(got.length, SUBSCRIBER_QUEUE_MAX + 1);
    assert.deepEqual(got.slice(0, 3), ['/s/k0', '/s/k1', '/s/k2']);
  } finally {
    store.close();
  }
});

test('/v2/stats/store counts operations by outcome and open watches', async () => {
  const before = await storeStats(s.url);
  await put(s.url, '/st/a', '1'); // set ok
  await fetch(`${s.url}/v2/keys/st/a`).then((r) => r.text()); // get ok
  await fetch(`${s.url}/v2/keys/st/missing`).then((r) => r.text()); // get fail
  await fetch(`${s.url}/v2/keys/st/a?prevExist=false`, { method: 'PUT', body: 'value=2', headers: FORM }).then((r) => r.text()); // create fail
  await fetch(`${s.url}/v2/keys/st/a?prevValue=1`, { method: 'PUT', body: 'value=2', headers: FORM }).then((r) => r.text()); // cas ok
  await fetch(`${s.url}/v2/keys/st/a?prevValue=9`, { method: 'DELETE' }).then((r) => r.text()); // cad fail
  await fetch(`${s.url}/v2/keys/st/a`, { method: 'DELETE' }).then((r) => r.text()); // delete ok
  const poll = longPoll(new http.Agent(), `${s.url}/v2/keys/st/w?wait=true`);
  await until('registered', async () => (await storeStats(s.url)).watchers === 1);
  const now = await storeStats(s.url);
  const delta = (k: string): number => (now[k] ?? 0) - (before[k] ?? 0);
  assert.deepEqual(
    ['setsSuccess', 'getsSuccess', 'getsFail', 'createFail', 'compareAndSwapSuccess', 'compareAndDeleteFail', 'deleteSuccess', 'updateSuccess'].map(delta),
    [1, 1, 1, 1, 1, 1, 1, 0],
  );
  assert.equal(now.watchers, 1);
  poll.abort();
  await poll.done.catch(() => undefined);
});
