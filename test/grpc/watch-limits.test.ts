// Watch behaviour that depends on server settings: progress_notify at the configured interval,
// and the bound on what a consumer that stops reading may leave buffered.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KVClient, PutRequest, WatchClient, WatchCreateRequest, type PutResponse, type WatchResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { startOurServer } from '../helpers/procs.js';

const b = (s: string) => Buffer.from(s);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function put(kv: KVClient, key: string, value: Buffer): Promise<PutResponse> {
  return new Promise((resolve, reject) => kv.put(PutRequest.fromPartial({ key: b(key), value }), (e: grpc.ServiceError | null, r: PutResponse) => (e ? reject(e) : resolve(r))));
}

test('progress_notify watchers get an empty response per idle interval; others do not', async () => {
  const server = await startOurServer({ extraArgs: ['--experimental-watch-progress-notify-interval=200ms'] });
  const watch = new WatchClient(server.endpoint, grpc.credentials.createInsecure());
  try {
    const stream = watch.watch();
    const got: WatchResponse[] = [];
    stream.on('data', (r: WatchResponse) => got.push(r));
    stream.on('error', () => undefined);
    stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: b('a'), progressNotify: true }) } });
    stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: b('b') }) } });
    await sleep(1100);
    stream.cancel();
    const progress = got.filter((r) => !r.created && r.events.length === 0);
    assert.ok(progress.length >= 3 && progress.length <= 6, `progress responses: ${progress.length}`);
    assert.ok(progress.every((r) => r.watchId === 0n && r.header!.revision === 1n));
  } finally {
    watch.close();
    await server.stop();
  }
});

test('a consumer that stops reading has its watchers canceled with a reason, and the server stays bounded', async () => {
  const backlogMax = 1 << 20;
  const server = await startOurServer({ extraArgs: [`--watch-backlog-bytes-max=${backlogMax}`] });
  const watch = new WatchClient(server.endpoint, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  const kv = new KVClient(server.endpoint, grpc.credentials.createInsecure());
  try {
    const stream = watch.watch();
    const got: WatchResponse[] = [];
    stream.on('data', (r: WatchResponse) => got.push(r));
    stream.on('error', () => undefined);
    stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: b('k'), rangeEnd: b('l') }) } });
    await sleep(200);
    stream.pause(); // stop reading: HTTP/2 flow control makes the server buffer
    const value = Buffer.alloc(64 * 1024, 'v');
    for (let i = 0; i < 200; i++) await put(kv, `k${i}`, value); // 12.8 MB of events
    stream.resume();
    await sleep(1000);
    const canceled = got.find((r) => r.canceled);
    assert.ok(canceled, 'the watcher was canceled');
    assert.match(canceled.cancelReason, /watch stream too slow/);
    const delivered = got.reduce((n, r) => n + r.events.length, 0);
    assert.ok(delivered < 200, `only part of the events were buffered (${delivered})`);
    // The server is still fine for others.
    assert.equal((await put(kv, 'after', b('x'))).header!.revision, 202n);
    stream.cancel();
  } finally {
    watch.close();
    kv.close();
    await server.stop();
  }
});

test('--max-watchers-per-stream: a create past the limit is canceled with a reason; other streams and freed slots still work', async () => {
  const server = await startOurServer({ extraArgs: ['--max-watchers-per-stream=2'] });
  const watch = new WatchClient(server.endpoint, grpc.credentials.createInsecure());
  const open = () => {
    const stream = watch.watch();
    const got: WatchResponse[] = [];
    stream.on('data', (r: WatchResponse) => got.push(r));
    stream.on('error', () => undefined);
    const create = (key: string) => stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: b(key) }) } });
    return { stream, got, create };
  };
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 100 && !cond(); i++) await sleep(20);
    assert.ok(cond());
  };
  try {
    const s1 = open();
    for (const k of ['a', 'b', 'c']) s1.create(k);
    await until(() => s1.got.length === 3);
    assert.deepEqual(s1.got.map((r) => [r.watchId, r.created, r.canceled]), [[0n, true, false], [1n, true, false], [-1n, true, true]]);
    assert.equal(s1.got[2]!.cancelReason, 'etcdserver: too many watchers on this stream (--max-watchers-per-stream=2): cancel one or open another stream');
    // Another stream has its own budget.
    const s2 = open();
    s2.create('d');
    await until(() => s2.got.length === 1);
    assert.equal(s2.got[0]!.canceled, false);
    // Canceling one frees a slot on the first stream.
    s1.stream.write({ requestUnion: { $case: 'cancelRequest', value: { watchId: 0n } } });
    s1.create('e');
    await until(() => s1.got.length === 5);
    assert.deepEqual(s1.got.slice(3).map((r) => [r.watchId, r.created, r.canceled]), [[0n, false, true], [2n, true, false]]);
    s1.stream.cancel();
    s2.stream.cancel();
  } finally {
    watch.close();
    await server.stop();
  }
});

test('--max-concurrent-streams: calls past the limit on one connection wait for a stream to end (HTTP/2 SETTINGS)', async () => {
  const server = await startOurServer({ extraArgs: ['--max-concurrent-streams=2'] });
  const watch = new WatchClient(server.endpoint, grpc.credentials.createInsecure());
  // The same HTTP/2 connection for the unary calls.
  const kv = new KVClient(server.endpoint, grpc.credentials.createInsecure(), { channelOverride: watch.getChannel() });
  try {
    const streams = [watch.watch(), watch.watch()];
    const created = streams.map((s) => new Promise<void>((resolve) => s.once('data', () => resolve())));
    for (const s of streams) {
      s.on('error', () => undefined);
      s.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: b('x') }) } });
    }
    await Promise.all(created);
    let done = false;
    const p = put(kv, 'x', b('1')).then(() => { done = true; });
    await sleep(500);
    assert.equal(done, false, 'a third concurrent stream waited');
    streams[0]!.cancel();
    await p;
    assert.equal(done, true);
    streams[1]!.cancel();
  } finally {
    kv.close();
    watch.close();
    await server.stop();
  }
});
