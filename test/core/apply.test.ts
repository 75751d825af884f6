// The deterministic core without I/O: the Applier and Range over an in-memory storage.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Applier } from '../../src/core/apply.js';
import { AuthStore, SimpleTokens } from '../../src/core/auth/index.js';
import { rangeOp } from '../../src/core/kv.js';
import { Lessor } from '../../src/core/lease/lessor.js';
import { MvccStore } from '../../src/core/mvcc/store.js';
import {
  Compare_CompareResult as R, Compare_CompareTarget as T, RangeRequest, RangeRequest_SortOrder as Order,
  RangeRequest_SortTarget as Target, type Compare, type RequestOp, type TxnRequest,
} from '../../src/gen/etcdserverpb/rpc.js';
import type { InternalRequest } from '../../src/gen/serverpb/internal.js';
import type { Clock } from '../../src/util/clock.js';
import { MemoryStorage } from '../helpers/memory-storage.js';

const b = (s: string): Buffer => Buffer.from(s);
const clock: Clock = { nowMs: () => 1000, after: () => () => undefined };

function core() {
  const storage = new MemoryStorage();
  const store = new MvccStore(storage);
  const lessor = new Lessor(clock, 2);
  const applier = new Applier(store, lessor, storage, new AuthStore(storage), new SimpleTokens(clock, 300_000));
  let index = 0;
  const apply = (request: InternalRequest['request']) => applier.apply({ header: { ID: 0n, username: '', authRevision: 0n }, request }, ++index);
  const put = (key: string, value: string, lease = 0n) =>
    apply({ $case: 'put', value: { key: b(key), value: b(value), lease, prevKv: false, ignoreValue: false, ignoreLease: false } });
  const range = (over: Partial<RangeRequest>) => rangeOp(store, RangeRequest.fromPartial(over), store.currentRev);
  return { storage, store, lessor, applier, apply, put, range };
}

const putOp = (key: string, value: string): RequestOp => ({
  request: { $case: 'requestPut', value: { key: b(key), value: b(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } },
});
const rangeReq = (key: string): RequestOp => ({ request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key: b(key) }) } });
const cmp = (key: string, target: T, result: R, u: Compare['targetUnion']): Compare => ({ key: b(key), target, result, targetUnion: u, rangeEnd: Buffer.alloc(0) });

test('a fresh store is at revision 1 and every write advances it by one', () => {
  const c = core();
  assert.equal(c.store.currentRev, 1);
  assert.equal(c.put('a', '1').rev, 2);
  assert.equal(c.put('a', '2').rev, 3);
  const r = c.range({ key: b('a') });
  assert.equal(r.kvs[0]!.version, 2n);
  assert.equal(r.kvs[0]!.createRevision, 2n);
  assert.equal(r.kvs[0]!.modRevision, 3n);
  assert.equal(c.range({ key: b('a'), revision: 2n }).kvs[0]!.value.toString(), '1');
});

test('range: limit/more/count, sorting, min/max filters and etcd 3.4 quirks', () => {
  const c = core();
  for (const [k, v] of [['a', 'z'], ['b', 'y'], ['c', 'x'], ['d', 'w']] as const) c.put(k, v);
  c.put('a', 'zz');
  const all = { key: b('a'), rangeEnd: Buffer.from([0]) };
  let r = c.range({ ...all, limit: 2n });
  assert.deepEqual(r.kvs.map((kv) => kv.key.toString()), ['a', 'b']);
  assert.equal(r.more, true);
  assert.equal(r.count, 4n);
  r = c.range({ ...all, sortOrder: Order.DESCEND, sortTarget: Target.MOD, limit: 2n });
  assert.deepEqual(r.kvs.map((kv) => kv.key.toString()), ['a', 'd']);
  // sort_target VALUE with sort_order NONE sorts ascending by value
  r = c.range({ ...all, sortTarget: Target.VALUE });
  assert.deepEqual(r.kvs.map((kv) => kv.key.toString()), ['d', 'c', 'b', 'a']);
  // ...but a limit is still pushed down first (3.4 fetches limit+1 by key, then sorts)
  r = c.range({ ...all, sortTarget: Target.VALUE, limit: 1n });
  assert.deepEqual(r.kvs.map((kv) => kv.key.toString()), ['b']);
  r = c.range({ ...all, minModRevision: 4n, maxModRevision: 5n });
  assert.deepEqual(r.kvs.map((kv) => kv.key.toString()), ['c', 'd']);
  assert.equal(r.count, 4n);
  r = c.range({ ...all, countOnly: true });
  assert.equal(r.kvs.length, 0);
  assert.equal(r.count, 4n);
  r = c.range({ ...all, keysOnly: true });
  assert.equal(r.kvs[0]!.value.length, 0);
  assert.equal(c.range({ key: b('c'), rangeEnd: b('a') }).kvs.length, 0);
  assert.throws(() => c.range({ key: b('a'), revision: 99n }), /futureRev/);
});

test('txn: compares on missing keys, branch choice, nested headers, one revision', () => {
  const c = core();
  c.put('a', '1');
  const txn: TxnRequest = {
    compare: [cmp('a', T.VALUE, R.EQUAL, { $case: 'value', value: b('1') }), cmp('missing', T.CREATE, R.EQUAL, { $case: 'createRevision', value: 0n })],
    success: [rangeReq('a'), putOp('a', '2'), putOp('b', '3'), { request: { $case: 'requestTxn', value: { compare: [], success: [rangeReq('b')], failure: [] } } }],
    failure: [],
  };
  const res = c.apply({ $case: 'txn', value: txn });
  assert.equal(res.error, undefined);
  assert.equal(res.rev, 3);
  const resp = res.response!;
  assert.equal(resp.$case, 'txn');
  if (resp.$case !== 'txn') return;
  assert.equal(resp.value.succeeded, true);
  const [r0, r1, , r3] = resp.value.responses;
  assert.equal(r0?.response?.$case === 'responseRange' && r0.response.value.header!.revision, 2n);
  assert.equal(r1?.response?.$case === 'responsePut' && r1.response.value.header!.revision, 3n);
  assert.ok(r3!.response?.$case === 'responseTxn');
  if (r3!.response?.$case === 'responseTxn') {
    assert.equal(r3!.response.value.header!.revision, 0n);
    const inner = r3!.response.value.responses[0]!.response;
    assert.ok(inner?.$case === 'responseRange' && inner.value.kvs[0]!.value.toString() === '3');
  }
  // VALUE compare on a missing key is always false, even NOT_EQUAL
  const f = c.apply({ $case: 'txn', value: { compare: [cmp('nope', T.VALUE, R.NOT_EQUAL, { $case: 'value', value: b('x') })], success: [putOp('x', '1')], failure: [] } });
  assert.ok(f.response?.$case === 'txn' && f.response.value.succeeded === false);
  assert.equal(f.rev, 3);
});

test('txn with an unknown lease fails whole, nothing applied', () => {
  const c = core();
  const lp = putOp('k', 'v');
  if (lp.request?.$case === 'requestPut') lp.request.value.lease = 77n;
  const r = c.apply({ $case: 'txn', value: { compare: [], success: [putOp('j', 'v'), lp], failure: [] } });
  assert.equal(r.error?.code, 'leaseNotFound');
  assert.equal(c.store.currentRev, 1);
  assert.equal(c.range({ key: b('j') }).count, 0n);
});

test('lease revoke deletes every attached key in one revision and detaches overwritten keys', () => {
  const c = core();
  c.apply({ $case: 'leaseGrant', value: { ID: 5n, TTL: 1n } });
  assert.equal(c.lessor.get(5n)!.ttl, 2, 'TTL below the minimum is raised');
  c.put('x', '1', 5n);
  c.put('y', '1', 5n);
  c.put('z', '1', 5n);
  c.put('z', '2');
  assert.deepEqual([...c.lessor.get(5n)!.keys].sort(), ['x', 'y']);
  const before = c.store.currentRev;
  const r = c.apply({ $case: 'leaseRevoke', value: { ID: 5n } });
  assert.equal(r.rev, before + 1);
  assert.equal(r.changes.length, 2);
  assert.equal(c.range({ key: b('x'), rangeEnd: b('zz') }).count, 1n);
  assert.equal(c.apply({ $case: 'leaseRevoke', value: { ID: 5n } }).error?.code, 'leaseNotFound');
});

test('compaction removes history and refuses old revisions; the store restores from storage', () => {
  const c = core();
  c.put('a', '1');
  c.put('a', '2');
  c.apply({ $case: 'deleteRange', value: { key: b('b'), rangeEnd: Buffer.alloc(0), prevKv: false } });
  c.put('b', '1');
  c.apply({ $case: 'deleteRange', value: { key: b('b'), rangeEnd: Buffer.alloc(0), prevKv: false } });
  assert.equal(c.store.currentRev, 5);
  c.apply({ $case: 'compaction', value: { revision: 4n, physical: true } });
  assert.throws(() => c.range({ key: b('a'), revision: 3n }), /compacted/);
  assert.equal(c.range({ key: b('a'), revision: 4n }).kvs[0]!.value.toString(), '2');
  assert.equal(c.apply({ $case: 'compaction', value: { revision: 4n, physical: false } }).error?.code, 'compacted');
  const restored = new MvccStore(c.storage);
  assert.equal(restored.currentRev, 5);
  assert.equal(restored.compactRev, 4);
  assert.equal(rangeOp(restored, RangeRequest.fromPartial({ key: b('a') }), 5).kvs[0]!.version, 2n);
});

test('auth: a key write checked at an older auth revision is refused at apply; auth management is not', () => {
  const storage = new MemoryStorage();
  const store = new MvccStore(storage);
  const auth = new AuthStore(storage);
  const applier = new Applier(store, new Lessor(clock, 2), storage, auth, new SimpleTokens(clock, 300_000));
  let index = 0;
  const apply = (authRevision: bigint, request: InternalRequest['request']) =>
    applier.apply({ header: { ID: 0n, username: 'root', authRevision }, request }, ++index);
  apply(0n, { $case: 'authUserAdd', value: { name: 'root', passwordHash: b('h'), options: undefined } });
  apply(0n, { $case: 'authUserGrantRole', value: { user: 'root', role: 'root' } });
  apply(0n, { $case: 'authEnable', value: {} });
  const rev = BigInt(auth.revision);
  const put = { $case: 'put' as const, value: { key: b('k'), value: b('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } };
  assert.equal(apply(rev, put).error, undefined);
  assert.equal(apply(rev - 1n, put).error?.code, 'authOldRevision');
  assert.equal(store.currentRev, 2);
  assert.equal(apply(rev - 1n, { $case: 'authRoleAdd', value: { name: 'r' } }).error, undefined);
  assert.deepEqual(auth.roleNames(), ['r']);
  // The auth state is staged with the applied index, in the same commit.
  assert.ok(storage.meta.has('auth') && storage.meta.has('consistentIndex'));
});
