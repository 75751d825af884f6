// Memory cost of 1 MiB puts through the v3 JSON gateway, measured on our server as a child process
// from /proc/PID/status (VmRSS, VmHWM, RssAnon): N sequential puts, then rounds of 8 concurrent
// ones, then more sequential ones. The bounds leave room for GC timing (which moves these numbers
// by ten MiB and more between runs: measured 3.0-3.8x on the concurrent phase, etcd 3.4 6.3-8.7x);
// they catch a leak, or the copies the write path no longer makes coming back (before they went,
// the concurrent phase measured 3.4-6.2x). The measured factors are printed (etcd 3.4's own
// figures: `npm run bench -- gateway`, bench/README.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { formatBigPut, measureBigPuts, memSample, type BigPutResult } from '../../bench/lib/bigput.js';
import { startOurServer, type Server } from '../helpers/procs.js';
import { Pool } from 'undici';
import { randomBytes } from 'node:crypto';

const MiB = 2 ** 20;
const CONCURRENCY = 8;
/** Allowed peak growth per request body in flight, and a fixed allowance for GC/heap noise. */
const PER_BODY_FACTOR = 4;
const NOISE = 24 * MiB;

let srv: Server;
let r: BigPutResult;

before(async () => {
  srv = await startOurServer();
  r = await measureBigPuts({ url: srv.clientUrl, pid: srv.pid, sequential: 8, concurrency: CONCURRENCY, rounds: 2 });
  process.stdout.write(formatBigPut(`ours (pid ${srv.pid})`, r) + '\n');
  process.stdout.write(
    `amplification (peak growth / bytes in flight): sequential ${r.sequential.amplification.toFixed(2)}x of one ${(r.bodyBytes / 1e6).toFixed(2)} MB body ` +
      `(${(r.sequential.peakGrowth / (r.sequential.requests * r.bodyBytes)).toFixed(2)}x of all ${r.sequential.requests}: garbage not yet collected), ` +
      `concurrent ${r.concurrent.amplification.toFixed(2)}x of ${CONCURRENCY} bodies (${(r.concurrent.peakGrowth / (CONCURRENCY * MiB)).toFixed(2)}x per MiB of value); ` +
      `total peak over idle ${((r.concurrent.after.hwm - r.idle.rss) / MiB).toFixed(1)} MiB\n`,
  );
});

after(async () => {
  await srv?.stop();
});

test('8 concurrent 1 MiB puts: peak RSS growth stays within a few copies of the bodies in flight', () => {
  assert.equal(r.hwmReset, true, 'VmHWM could not be reset (/proc/PID/clear_refs): the peak would include startup');
  const bound = CONCURRENCY * r.bodyBytes * PER_BODY_FACTOR + NOISE;
  assert.ok(
    r.concurrent.peakGrowth < bound,
    `peak growth ${(r.concurrent.peakGrowth / MiB).toFixed(1)} MiB with ${CONCURRENCY} puts in flight, bound ${(bound / MiB).toFixed(1)} MiB ` +
      `(${r.concurrent.amplification.toFixed(2)}x the bodies in flight)`,
  );
});

test('sequential 1 MiB puts: peak RSS growth is bounded (garbage awaiting GC, no per-request retention)', () => {
  // One body in flight, but the heap may hold several puts' garbage before a major GC runs.
  const bound = 8 * r.bodyBytes * PER_BODY_FACTOR + NOISE;
  assert.ok(r.sequential.peakGrowth < bound, `sequential peak growth ${(r.sequential.peakGrowth / MiB).toFixed(1)} MiB, bound ${(bound / MiB).toFixed(1)} MiB`);
});

test('no leak: 32 more sequential 1 MiB puts leave anonymous RSS about where it was', async () => {
  const pool = new Pool(srv.clientUrl, { connections: 1 });
  try {
    const body = JSON.stringify({ key: Buffer.from('mem/leak').toString('base64'), value: randomBytes(MiB).toString('base64') });
    const put = async (): Promise<void> => {
      const res = await pool.request({ path: '/v3/kv/put', method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const text = await res.body.text();
      assert.equal(res.statusCode, 200, text.slice(0, 200));
    };
    for (let i = 0; i < 8; i++) await put();
    const start = memSample(srv.pid);
    for (let i = 0; i < 32; i++) await put();
    const end = memSample(srv.pid);
    const growth = end.anon - start.anon;
    process.stdout.write(`32 more puts: RssAnon ${(start.anon / MiB).toFixed(1)} -> ${(end.anon / MiB).toFixed(1)} MiB\n`);
    // Keeping every request (body + value, ~2.4 MiB each) would add ~77 MiB.
    assert.ok(growth < 40 * MiB, `RssAnon grew ${(growth / MiB).toFixed(1)} MiB over 32 sequential 1 MiB puts`);
  } finally {
    await pool.close();
  }
});
