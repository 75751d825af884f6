// Watch soak over the v3 JSON gateway with a real HTTP client (undici): POST /v3/watch, a chunked
// answer of {"result":...} lines, while another client runs a long write run. Every event must
// arrive exactly once and in order; midway the watch connection is destroyed and a new watch
// resumes at start_revision = last seen + 1, and nothing may be lost or duplicated across the
// reconnect. The server runs in process (test/gateway/harness.ts) so that the test can see, through
// the backend's public watch() method, that the first watch session was closed.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { Client, Pool } from 'undici';
import type { WatchOutput, WatchSession } from '../../src/backend/index.js';
import { startGateway, type GatewayServer } from './harness.js';

const WRITES = 3000;
const WRITE_BUDGET_MS = 10_000;
const WRITERS = 4;
const PREFIX = 'soak/';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface WatchEvent {
  type?: string;
  kv?: { key?: string; value?: string; mod_revision?: string; version?: string };
}
interface WatchResult {
  header?: { revision?: string };
  created?: boolean;
  canceled?: boolean;
  cancel_reason?: string;
  watch_id?: string;
  events?: WatchEvent[];
}

/** One watch on its own connection; results go to onResult line by line as they arrive. */
class HttpWatch {
  private readonly client: Client;
  private readonly reqBody = new PassThrough();
  readonly finished: Promise<{ error?: unknown }>;
  private resolveCreated!: (r: WatchResult) => void;
  readonly created = new Promise<WatchResult>((r) => { this.resolveCreated = r; });

  constructor(url: string, create: Record<string, unknown>, onResult: (r: WatchResult) => void) {
    const client = new Client(url, { pipelining: 1, bodyTimeout: 0, headersTimeout: 30_000 });
    this.client = client;
    const reqBody = this.reqBody;
    // The request body stays open (a client stream): the watch lives until the connection goes.
    this.reqBody.write(JSON.stringify({ create_request: create }));
    this.finished = (async () => {
      try {
        const res = await client.request({ path: '/v3/watch', method: 'POST', body: reqBody });
        assert.equal(res.statusCode, 200);
        let buf = '';
        for await (const chunk of res.body) {
          buf += (chunk as Buffer).toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            const msg = JSON.parse(line) as { result?: WatchResult; error?: unknown };
            if (msg.result === undefined) throw new Error(`watch stream error line: ${line}`);
            if (msg.result.created === true) this.resolveCreated(msg.result);
            else onResult(msg.result);
          }
        }
        return {};
      } catch (error) {
        return { error };
      }
    })();
  }

  /** Tears the TCP connection down (no half-close, no cancel request). */
  async destroy(): Promise<void> {
    await this.client.destroy();
    this.reqBody.destroy();
  }
}

let s: GatewayServer;
const sessions = { opened: 0, closed: 0 };
let originalWatch: ((out: WatchOutput) => WatchSession) | undefined;

before(async () => {
  s = await startGateway();
  // Count sessions through the backend's public watch() (as test/gateway/routes.test.ts does).
  const backend = s.backend;
  const original = backend.watch.bind(backend);
  originalWatch = original;
  backend.watch = (out, ctx) => {
    const session = original(out, ctx);
    sessions.opened++;
    let closed = false;
    return {
      request: (r) => session.request(r),
      close: () => {
        if (!closed) sessions.closed++;
        closed = true;
        session.close();
      },
    };
  };
});

after(async () => {
  if (originalWatch !== undefined) s.backend.watch = originalWatch;
  await s?.close();
});

test(`watch over HTTP sees ${WRITES} puts exactly once and in order, across a reconnect at last revision + 1`, async () => {
  const t0 = Date.now();
  /** revision -> [key, value] of every acknowledged put */
  const written = new Map<number, [string, string]>();
  /** revisions in the order the watches delivered them, per watch */
  const seen: number[][] = [[], []];
  const problems: string[] = [];
  const record = (w: number) => (r: WatchResult): void => {
    if (r.canceled === true) problems.push(`watch ${w} canceled: ${r.cancel_reason ?? ''}`);
    for (const e of r.events ?? []) {
      if (e.type !== undefined && e.type !== 'PUT') problems.push(`watch ${w}: event type ${e.type}`);
      const rev = Number(e.kv?.mod_revision);
      const key = unb64(e.kv?.key);
      const value = unb64(e.kv?.value);
      if (!Number.isSafeInteger(rev) || !key.startsWith(PREFIX)) problems.push(`watch ${w}: odd event ${JSON.stringify(e)}`);
      seen[w]!.push(rev);
      // Compared to the put's own revision once the writes are done (the put may not be acked yet).
      pending.push([rev, key, value, w]);
    }
  };
  const pending: Array<[number, string, string, number]> = [];

  const first = new HttpWatch(s.url, { key: b64(PREFIX), range_end: b64('soak0') }, record(0));
  const created = await first.created;
  const startRev = Number(created.header?.revision);
  assert.ok(startRev >= 1);
  const openedBefore = sessions.opened;
  assert.equal(sessions.opened - sessions.closed, 1, 'one watch session open');

  // The writer: WRITERS loops of sequential puts (each key written once), until WRITES or the budget.
  const pool = new Pool(s.url, { connections: WRITERS, pipelining: 1 });
  let next = 0;
  let writesDoneAt = 0;
  const writer = Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (next < WRITES && Date.now() - t0 < WRITE_BUDGET_MS) {
        const i = next++;
        const key = `${PREFIX}${String(i).padStart(5, '0')}`;
        const value = `v${i}`;
        const res = await pool.request({ path: '/v3/kv/put', method: 'POST', body: JSON.stringify({ key: b64(key), value: b64(value) }) });
        const text = await res.body.text();
        assert.equal(res.statusCode, 200, text);
        const rev = Number((JSON.parse(text) as { header: { revision: string } }).header.revision);
        assert.ok(!written.has(rev), `revision ${rev} acknowledged twice`);
        written.set(rev, [key, value]);
      }
    }),
  ).then(() => {
    writesDoneAt = Date.now();
  });

  try {
    // Midway: tear the first watch's connection down while the writes go on.
    while (seen[0]!.length < WRITES / 2 && Date.now() - t0 < WRITE_BUDGET_MS + 5_000) await sleep(5);
    await first.destroy();
    const cutAt = Date.now();
    const firstEnd = await first.finished;
    assert.ok(firstEnd.error !== undefined, 'the destroyed watch ended with an error on the client side');
    const lastSeen = seen[0]!.at(-1) ?? startRev;

    // The server notices the disconnect and closes the session.
    for (let i = 0; i < 200 && sessions.closed < 1; i++) await sleep(10);
    assert.equal(sessions.closed, 1, 'the server closed the first watch session after the disconnect');
    assert.equal(sessions.opened, openedBefore);

    const second = new HttpWatch(s.url, { key: b64(PREFIX), range_end: b64('soak0'), start_revision: String(lastSeen + 1) }, record(1));
    await second.created;
    const resumedAt = Date.now();
    await writer;
    const lastRev = Math.max(...written.keys());
    while ((seen[1]!.at(-1) ?? 0) < lastRev && Date.now() - writesDoneAt < 10_000) await sleep(5);
    await sleep(100); // anything after the last revision would be a duplicate: give it a moment to show
    await second.destroy();
    await second.finished;

    process.stdout.write(
      `writes: ${written.size} puts in ${((writesDoneAt - t0) / 1000).toFixed(2)} s (revisions ${startRev + 1}..${lastRev}); ` +
        `watch 1: ${seen[0]!.length} events, cut at ${((cutAt - t0) / 1000).toFixed(2)} s after revision ${lastSeen}; ` +
        `watch 2 (start_revision ${lastSeen + 1}, ${writesDoneAt > resumedAt ? 'resumed while writes went on' : 'resumed after the writes ended'}): ${seen[1]!.length} events\n`,
    );

    assert.deepEqual(problems, []);
    assert.ok(written.size >= 1000, `only ${written.size} puts in ${WRITE_BUDGET_MS} ms`);
    // Every write is in [startRev+1, lastRev] and nothing else wrote: the revisions are consecutive.
    const expected = [...written.keys()].sort((a, b) => a - b);
    assert.equal(expected[0], startRev + 1);
    assert.equal(expected.at(-1)! - expected[0]! + 1, expected.length, 'acknowledged revisions are consecutive');
    for (const w of [0, 1]) {
      const revs = seen[w]!;
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `watch ${w + 1}: revision ${revs[i]} after ${revs[i - 1]}`);
    }
    assert.ok(seen[0]!.length >= WRITES / 2 || seen[0]!.length > 0);
    assert.equal(seen[1]![0], lastSeen + 1, 'the second watch starts exactly at last seen + 1');
    assert.deepEqual([...seen[0]!, ...seen[1]!], expected, 'all events exactly once, in order, across the reconnect');
    for (const [rev, key, value, w] of pending) {
      assert.deepEqual([key, value], written.get(rev), `watch ${w + 1}: event at revision ${rev} carries the put's key and value`);
    }
  } finally {
    await first.destroy().catch(() => undefined);
    await writer.catch(() => undefined);
    await pool.close();
  }
});
