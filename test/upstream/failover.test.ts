// Fault test of gateway mode: a write and watch workload through our gateway (real HTTP) while the
// etcd member its watch stream is connected to is SIGKILLed and later restarted. Checked: every
// acknowledged write is in the cluster afterwards; every watcher (JSON /v3/watch streams, shared
// upstream) received every applied write exactly once and in order; failed requests failed with
// clear errors (503/504 and etcd's or grpc's reason), never with a wrong answer.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { startGateway, type GatewayServer } from '../gateway/harness.js';
import { hasEtcd } from '../helpers/procs.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface WatchEvent { key: string; rev: number; value: string }

/** A /v3/watch stream collecting the events of one prefix from startRevision. */
function openWatch(base: string, prefix: string, startRevision: number): { events: WatchEvent[]; errors: string[]; created: Promise<void>; close(): void } {
  const events: WatchEvent[] = [];
  const errors: string[] = [];
  let onCreated: () => void = () => undefined;
  const created = new Promise<void>((r) => { onCreated = r; });
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  const u = new URL('/v3/watch', base);
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST' }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim() === '') continue;
        const msg = JSON.parse(line) as { result?: { created?: boolean; canceled?: boolean; cancel_reason?: string; events?: { kv: { key: string; value?: string; mod_revision: string } }[] }; error?: unknown };
        if (msg.error !== undefined || msg.result?.canceled === true) errors.push(line);
        if (msg.result?.created === true) onCreated();
        for (const e of msg.result?.events ?? []) events.push({ key: unb64(e.kv.key), rev: Number(e.kv.mod_revision), value: unb64(e.kv.value ?? '') });
      }
    });
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  req.write(JSON.stringify({ create_request: { key: b64(prefix), range_end: end.toString('base64'), start_revision: String(startRevision) } }));
  return { events, errors, created, close: () => req.destroy() };
}

let gw: GatewayServer;
const agent = new Agent({ connections: 16 });

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(new URL(path, gw.url), { method: 'POST', body: JSON.stringify(body), dispatcher: agent, headersTimeout: 30_000 });
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> };
}

before(async () => {
  if (!hasEtcd()) return;
  gw = await startGateway(['--upstream-timeout', '2s'], undefined, { upstream: true });
});
after(async () => {
  await agent.close();
  await gw?.close();
});

test('member killed and restarted under writes and watches: no acknowledged write lost, every event once and in order', { skip: !hasEtcd() && 'needs /usr/bin/etcd', timeout: 120_000 }, async () => {
  const cluster = gw.cluster!;
  const upstream = gw.upstream!;
  const first = await post('/v3/kv/put', { key: b64('seed'), value: b64('x') });
  assert.equal(first.status, 200);
  const startRev = Number((first.json.header as { revision: string }).revision) + 1;

  // Watchers: three on the same prefix from the same revision (they share one upstream watcher)
  // and one on a sub-prefix (its own upstream watcher).
  const watchers = [openWatch(gw.url, 'w/', startRev), openWatch(gw.url, 'w/', startRev), openWatch(gw.url, 'w/', startRev), openWatch(gw.url, 'w/1', startRev)];
  await Promise.all(watchers.map((w) => w.created));

  const acked = new Map<string, number>();
  const failures: string[] = [];
  let stop = false;
  let n = 0;
  const writer = async (): Promise<void> => {
    while (!stop) {
      const key = `w/${n++}`;
      try {
        const r = await post('/v3/kv/put', { key: b64(key), value: b64(key) });
        if (r.status === 200) acked.set(key, Number((r.json.header as { revision: string }).revision));
        else failures.push(`${r.status} ${JSON.stringify(r.json)}`);
      } catch (e) {
        failures.push(`transport: ${String(e)}`);
      }
      await sleep(5);
    }
  };
  const writers = [writer(), writer()];

  await sleep(1500);
  // Kill the member the watch stream (and the writes) go to now.
  const victimAddr = upstream.pool.pick().address;
  const victim = cluster.members.findIndex((m) => m.endpoint === victimAddr);
  assert.ok(victim >= 0);
  const ackedBeforeKill = acked.size;
  await cluster.kill9(victim);
  // Longer than the request deadline: a write forwarded to a killed leader is lost inside etcd and
  // its caller waits out the deadline (as with clientv3); the writes after it must go through.
  await sleep(5000);
  const ackedWhileDown = acked.size - ackedBeforeKill;
  await cluster.restart(victim);
  await sleep(2000);
  stop = true;
  await Promise.all(writers);

  // The state of the cluster, read directly from a member that was never killed.
  const final = await post('/v3/kv/range', { key: b64('w/'), range_end: b64('w0') });
  assert.equal(final.status, 200);
  const kvs = (final.json.kvs as { key: string; mod_revision: string }[] | undefined ?? []).map((kv) => ({ key: unb64(kv.key), rev: Number(kv.mod_revision) }));
  const inCluster = new Map(kvs.map((kv) => [kv.key, kv.rev]));
  const lastRev = Number((final.json.header as { revision: string }).revision);

  // 1. No acknowledged write lost, at the revision it was acknowledged with.
  for (const [key, rev] of acked) assert.equal(inCluster.get(key), rev, `acknowledged ${key}@${rev} missing`);
  assert.ok(ackedWhileDown > 0, `writes continued while one member was down (failures: ${failures.slice(0, 5).join(' / ')})`);

  // 2. Every watcher: strictly increasing revisions (no duplicate, no reordering) and exactly the
  //    writes applied under its prefix (each key was written once).
  const deadline = Date.now() + 10_000;
  const expected = (prefix: string): WatchEvent[] => kvs.filter((kv) => kv.key.startsWith(prefix)).map((kv) => ({ key: kv.key, rev: kv.rev, value: kv.key })).sort((a, b) => a.rev - b.rev);
  for (const [i, w] of watchers.entries()) {
    const want = expected(i < 3 ? 'w/' : 'w/1');
    while (Date.now() < deadline && (w.events.length < want.length || (w.events.at(-1)?.rev ?? 0) < (want.at(-1)?.rev ?? 0))) await sleep(50);
    for (let j = 1; j < w.events.length; j++) assert.ok(w.events[j]!.rev > w.events[j - 1]!.rev, `watcher ${i}: event ${j} out of order or repeated`);
    assert.deepEqual(w.events, want, `watcher ${i} saw exactly the applied writes`);
    assert.deepEqual(w.errors, [], `watcher ${i} was not canceled`);
  }
  assert.ok(lastRev >= startRev);

  // 3. Failures (only around the kill) carry a clear reason.
  for (const f of failures) assert.match(f, /^(503|504) .*"message":"(etcd upstream unavailable: |etcdserver: |context deadline exceeded)/, f);
  for (const w of watchers) w.close();
  process.stdout.write(`# acked ${acked.size} writes (${ackedWhileDown} while a member was down), ${failures.length} failed: ${[...new Set(failures.map((f) => f.slice(0, 120)))].join(' | ')}\n`);
});
