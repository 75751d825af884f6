// The peer stream's two ends (src/core/rafthttp/stream.ts) over a real node:http server and an
// undici pool on loopback: frames arrive whole and in order; the reader redials when the stream
// ends and reports refusals (410 as removal); a reader that hears nothing for the read timeout
// gives up; a writer whose peer does not read is dropped instead of buffering without bound.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { encodeFrame } from '../../src/core/rafthttp/codec.js';
import { STREAM_READ_TIMEOUT_MS, StreamReader, StreamWriter, type StreamReaderOptions } from '../../src/core/rafthttp/stream.js';
import type { Message } from '../../src/core/raft/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.writeHead(404).end();
let server: Server;
let pool: Pool;
before(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await pool.destroy();
});

const hb = (i: number): Message => ({ type: 'heartbeat', from: 1n, to: 2n, term: 1, commit: i, ctx: undefined });
const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A reader on the shared pool that records what happens to it. */
function reader(extra: Partial<StreamReaderOptions> = {}): { r: StreamReader; got: Message[]; failures: string[]; ups: number[]; removed: number[] } {
  const got: Message[] = [];
  const failures: string[] = [];
  const ups: number[] = [];
  const removed: number[] = [];
  const r = new StreamReader({
    dispatcher: pool, localIdHex: 'a', headers: () => ({ 'x-test': '1' }),
    receive: (msgs) => got.push(...msgs), onBytes: () => undefined,
    onFailure: (what) => failures.push(what), onUp: () => ups.push(Date.now()), onRemoved: () => removed.push(1),
    ...extra,
  });
  return { r, got, failures, ups, removed };
}

test('frames written by the writer arrive whole and in order; the path names the dialler', async () => {
  let writer: StreamWriter | undefined;
  let path = '';
  handler = (req, res) => {
    path = req.url ?? '';
    res.writeHead(200);
    writer = new StreamWriter(res, () => undefined);
  };
  const { r, got, ups } = reader();
  try {
    await until('attached', () => writer !== undefined);
    assert.equal(path, '/raft/stream/message/a');
    // Batches of 1..7 messages, 300 in all: many small writes that TCP may join or split.
    const sent: Message[] = [];
    for (let i = 0; i < 300;) {
      const batch: Message[] = [];
      for (let k = 0; k < 1 + (i % 7) && i < 300; k++) batch.push(hb(i++));
      assert.ok(writer!.write(encodeFrame(batch)));
      sent.push(...batch);
    }
    await until('all received', () => got.length === sent.length);
    assert.deepStrictEqual(got, sent);
    assert.equal(ups.length, 1);
  } finally {
    r.close();
    writer?.close();
  }
});

test('the reader redials when the stream ends, and the new stream carries on', async () => {
  const writers: StreamWriter[] = [];
  handler = (_req, res) => {
    res.writeHead(200);
    writers.push(new StreamWriter(res, () => undefined));
  };
  const { r, got, failures, ups } = reader();
  try {
    await until('first stream', () => writers.length === 1);
    writers[0]!.write(encodeFrame([hb(1)]));
    await until('first message', () => got.length === 1);
    writers[0]!.close();
    await until('redialled', () => writers.length === 2);
    // The writer destroys its response (no last chunk): to the reader the stream broke.
    assert.deepEqual(failures, ['broken']);
    writers[1]!.write(encodeFrame([hb(2)]));
    await until('second message', () => got.length === 2);
    assert.deepStrictEqual(got, [hb(1), hb(2)]);
    assert.equal(ups.length, 2);
  } finally {
    r.close();
    for (const w of writers) w.close();
  }
});

test('refusals: a status other than 200 is a failure and is retried; 410 tells of the removal', async () => {
  let calls = 0;
  handler = (_req, res) => {
    calls++;
    res.writeHead(calls === 1 ? 412 : 410).end('no\n');
  };
  const { r, failures, removed, ups } = reader();
  try {
    await until('two refusals', () => failures.length >= 2);
    assert.deepEqual(failures.slice(0, 2), ['refused', 'refused']);
    assert.ok(removed.length >= 1, '410 reported as removal');
    assert.equal(ups.length, 0);
  } finally {
    r.close();
  }
});

test('a stream that goes silent (no frames, no link heartbeats) is given up after the read timeout', async () => {
  let dials = 0;
  const held: ServerResponse[] = [];
  handler = (_req, res) => {
    dials++;
    res.writeHead(200);
    res.write(Buffer.alloc(4)); // one link heartbeat, then nothing: a peer that stopped
    held.push(res);
  };
  const { r, failures } = reader();
  const t0 = Date.now();
  try {
    await until('the silent stream given up', () => failures.includes('broken'), STREAM_READ_TIMEOUT_MS + 5_000);
    const waited = Date.now() - t0;
    assert.ok(waited >= STREAM_READ_TIMEOUT_MS - 500, `gave up after ${waited} ms`);
    await until('redialled', () => dials >= 2);
  } finally {
    r.close();
    for (const res of held) res.destroy();
  }
});

test('a writer whose peer does not read is dropped (failed) instead of buffering without bound', async () => {
  let writer: StreamWriter | undefined;
  let failed: boolean | undefined;
  handler = (_req, res) => {
    res.writeHead(200);
    writer = new StreamWriter(res, (_w, f) => { failed = f; });
  };
  // A raw dial that never reads the body.
  const res = await pool.request({ method: 'GET', path: '/raft/stream/message/b' });
  res.body.pause();
  try {
    await until('attached', () => writer !== undefined);
    const big = encodeFrame([{ type: 'append', from: 1n, to: 2n, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array(1024 * 1024) }] }]);
    let accepted = 0;
    while (writer!.write(big)) {
      accepted++;
      assert.ok(accepted < 200, 'the writer never gave up');
    }
    assert.equal(failed, true);
    assert.equal(writer!.isOpen, false);
    assert.ok(accepted >= 32, `accepted ${accepted} MiB before giving up`);
  } finally {
    res.body.destroy();
  }
});
