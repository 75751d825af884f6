// RangeMirror (src/upstream/mirror.ts) in-process: its Range answers equal real etcd's for the same
// requests (limit, more, count, keys_only, count_only, single keys, ranges), what it declines goes
// upstream, a write through it keeps reads upstream until the watch brings that write, and a
// canceled watch drops the copy until it is loaded again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { V3Backend, WatchOutput } from '../../src/backend/index.js';
import { RangeRequest, type RangeResponse, type TxnRequest, type WatchResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { Event_EventType, type KeyValue } from '../../src/gen/mvccpb/kv.js';
import { UpstreamBackend } from '../../src/upstream/backend.js';
import { RangeMirror } from '../../src/upstream/mirror.js';
import { eventually } from '../cluster/helpers.js';
import { hasEtcd, startRealEtcd, type Server } from '../helpers/procs.js';

const b = (s: string): Buffer => Buffer.from(s);
const LO = b('/p/');
const HI = b('/p0');

/** A backend whose watch delivers only when told: the mirror lags it exactly as long as the test wants. */
class LaggingBackend {
  private readonly kvs = new Map<string, KeyValue>();
  rev = 1n;
  reads = 0;
  private readonly outs: WatchOutput[] = [];
  private held: WatchResponse[] = [];

  private header(): { clusterId: bigint; memberId: bigint; revision: bigint; raftTerm: bigint } {
    return { clusterId: 7n, memberId: 8n, revision: this.rev, raftTerm: 2n };
  }

  range(r: RangeRequest): Promise<RangeResponse> {
    this.reads++;
    const from = r.key.toString('latin1');
    const keys = [...this.kvs.keys()].sort().filter((k) => (r.rangeEnd.length === 0 ? k === from : k >= from && k < r.rangeEnd.toString('latin1')));
    const kvs = keys.map((k) => this.kvs.get(k)!);
    return Promise.resolve({ header: this.header(), kvs, more: false, count: BigInt(kvs.length) });
  }

  txn(t: TxnRequest): Promise<unknown> {
    this.reads++;
    return Promise.resolve({ header: this.header(), succeeded: true, responses: t.success.map(() => ({ response: { $case: 'responseRange', value: { kvs: [], more: false, count: 0n } } })) });
  }

  put(p: { key: Buffer; value: Buffer }): Promise<unknown> {
    this.rev++;
    const old = this.kvs.get(p.key.toString('latin1'));
    const kv: KeyValue = { key: p.key, value: p.value, createRevision: old?.createRevision ?? this.rev, modRevision: this.rev, version: (old?.version ?? 0n) + 1n, lease: 0n };
    this.kvs.set(p.key.toString('latin1'), kv);
    this.held.push({ header: this.header(), watchId: 0n, created: false, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events: [{ type: Event_EventType.PUT, kv, prevKv: undefined }] });
    return Promise.resolve({ header: this.header() });
  }

  watch(out: WatchOutput): { request(): void; close(): void } {
    this.outs.push(out);
    return { request: () => undefined, close: () => { this.outs.splice(this.outs.indexOf(out), 1); } };
  }

  deliver(): void {
    const held = this.held;
    this.held = [];
    for (const r of held) for (const o of this.outs) o.send(r);
  }

  cancelWatches(): void {
    for (const o of [...this.outs]) o.send({ header: this.header(), watchId: 0n, created: false, canceled: true, compactRevision: 5n, cancelReason: '', fragment: false, events: [] });
  }
}

test('a read after a write through the view waits for the watch to bring it (upstream if it does not come); declined requests go upstream', async () => {
  const fake = new LaggingBackend();
  await fake.put({ key: b('/p/a'), value: b('1') });
  fake.deliver();
  const m = new RangeMirror(fake as unknown as V3Backend, { key: LO, rangeEnd: HI, maxBytes: 1 << 20 });
  m.start();
  await eventually('the copy', async () => m.revision > 0n || undefined, 10_000);
  const view = m.view();
  const get = (key: string, more: Partial<RangeRequest> = {}): Promise<RangeResponse> => view.range(RangeRequest.fromPartial({ key: b(key), serializable: true, ...more }));
  const reads0 = fake.reads;
  assert.equal((await get('/p/a')).kvs[0]?.value.toString(), '1');
  assert.equal(fake.reads, reads0, 'served by the copy');

  await view.put({ key: b('/p/a'), value: b('2'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  const t0 = Date.now();
  assert.equal((await get('/p/a')).kvs[0]?.value.toString(), '2', 'read your write: from upstream, the watch being late');
  assert.ok(Date.now() - t0 >= 90, 'after waiting for the watch');
  assert.equal(fake.reads, reads0 + 1);
  fake.deliver();
  const fresh = await get('/p/a');
  assert.equal(fresh.kvs[0]?.value.toString(), '2');
  assert.equal(fresh.header?.revision, fake.rev, 'the copy caught up: its revision');
  assert.equal(fresh.header?.clusterId, 7n);
  assert.equal(fake.reads, reads0 + 1, 'and served by it again');
  await view.put({ key: b('/p/a'), value: b('3'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  const waiting = get('/p/a');
  setTimeout(() => fake.deliver(), 20);
  assert.equal((await waiting).kvs[0]?.value.toString(), '3', 'read your write: from the copy, once the watch brought it');
  assert.equal(fake.reads, reads0 + 1, 'no upstream read');

  const declined: Partial<RangeRequest>[] = [
    { serializable: false },
    { revision: 1n },
    { rangeEnd: b('\0') },
    { sortOrder: 1 },
    { minModRevision: 1n },
  ];
  for (const d of declined) await get('/p/a', d);
  await get('/q', {});
  await view.range(RangeRequest.fromPartial({ key: b('/p/'), rangeEnd: b('/q'), serializable: true }));
  assert.equal(fake.reads, reads0 + 1 + declined.length + 2, 'each declined request read upstream');
  m.close();
});

test('a canceled watch drops the copy (reads go upstream) and it is loaded again', async () => {
  const fake = new LaggingBackend();
  await fake.put({ key: b('/p/a'), value: b('1') });
  const states: string[] = [];
  const m2 = new RangeMirror(fake as unknown as V3Backend, { key: LO, rangeEnd: HI, maxBytes: 1 << 20, onState: (s) => states.push(s) });
  m2.start();
  await eventually('the copy', async () => m2.revision > 0n || undefined, 10_000);
  fake.cancelWatches();
  assert.equal(m2.revision, 0n, 'dropped');
  const reads = fake.reads;
  await m2.view().range(RangeRequest.fromPartial({ key: b('/p/a'), serializable: true }));
  assert.equal(fake.reads, reads + 1, 'read upstream while dropped');
  await eventually('loaded again', async () => m2.revision > 0n || undefined, 10_000);
  assert.deepEqual(states, ['loaded', 'dropped', 'loaded']);
  m2.close();
});

let etcd: Server | undefined;
let up: UpstreamBackend | undefined;
before(async () => {
  if (!hasEtcd()) return;
  etcd = await startRealEtcd();
  up = new UpstreamBackend({ endpoints: [etcd.endpoint], timeoutMs: 5000, maxRequestBytes: 1.5 * 1024 * 1024, watchBacklogBytesMax: 1 << 26 });
});
after(async () => {
  await up?.close();
  await etcd?.stop();
});

test('its Range answers equal real etcd\'s: single keys, ranges, limit/more, count_only, keys_only', { skip: !hasEtcd() && 'needs /usr/bin/etcd' }, async () => {
  const backend = up!;
  for (let i = 0; i < 30; i++) await backend.put({ key: b(`/p/k${String(i).padStart(2, '0')}`), value: b(`v${i}`), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  await backend.put({ key: b('/outside'), value: b('x'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  const m = new RangeMirror(backend, { key: LO, rangeEnd: HI, maxBytes: 1 << 20 });
  m.start();
  await eventually('the copy', async () => m.revision > 0n || undefined, 10_000);
  const view = m.view();
  const cases: Partial<RangeRequest>[] = [
    { key: b('/p/k05') },
    { key: b('/p/k99') },
    { key: b('/p/'), rangeEnd: HI },
    { key: b('/p/k1'), rangeEnd: b('/p/k2') },
    { key: b('/p/'), rangeEnd: HI, limit: 7n },
    { key: b('/p/'), rangeEnd: HI, limit: 30n },
    { key: b('/p/'), rangeEnd: HI, limit: 31n },
    { key: b('/p/'), rangeEnd: HI, countOnly: true },
    { key: b('/p/'), rangeEnd: HI, countOnly: true, limit: 3n },
    { key: b('/p/k2'), rangeEnd: b('/p/k3'), keysOnly: true },
    { key: b('/p/k2'), rangeEnd: b('/p/k2') },
    { key: b('/p/k3'), rangeEnd: b('/p/k2') },
  ];
  for (const c of cases) {
    const req = RangeRequest.fromPartial({ ...c, serializable: true });
    const mine = await view.range(req);
    const theirs = await backend.range(RangeRequest.fromPartial({ ...c, serializable: true, revision: mine.header!.revision }));
    const shape = (r: RangeResponse): unknown => ({ kvs: r.kvs.map((kv) => ({ ...kv, key: kv.key.toString(), value: Buffer.from(kv.value).toString() })), more: r.more, count: r.count });
    assert.deepEqual(shape(mine), shape(theirs), JSON.stringify(c, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  }
  assert.equal(m.counts.served, cases.length, 'every case was answered by the copy');
  m.close();
});
