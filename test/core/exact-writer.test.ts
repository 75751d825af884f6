// encodeExact must produce the very bytes @bufbuild/protobuf's BinaryWriter produces, for every
// request a proposal can carry: random messages of every InternalRequest case are generated from
// the .proto schema (every field type, repeated fields, oneofs, enums, negative int32/int64,
// 64-bit extremes, multi-byte UTF-8, lengths across varint boundaries) and encoded both ways.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { protoSchema, type FieldType, type MessageInfo } from '../../src/gateway/schema.js';
import { InternalRequest } from '../../src/gen/serverpb/internal.js';
import { encodeExact } from '../../src/util/exact-writer.js';
import { allocWithRoom, ROOM_BEFORE, ROOM_MIN_VALUE_BYTES } from '../../src/util/headroom.js';

let seed = 12345;
const rnd = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  // The high bits: an LCG's low bits repeat with short periods.
  return Math.floor((seed / 2 ** 31) * n);
};
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;

const schema = protoSchema();
const I64 = [0n, 1n, 127n, 128n, 16383n, 16384n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n - 1n, -1n, -300n, -(2n ** 63n)];
const U64 = [0n, 1n, 127n, 128n, 2n ** 32n, 2n ** 63n + 5n, 2n ** 64n - 1n];
const I32 = [0, 1, 127, 128, 300, 2 ** 31 - 1, -1, -129, -(2 ** 31)];
const STRINGS = ['', 'a', 'root', 'ü'.repeat(70), '日本', '\u{1F600}x', 'k'.repeat(200)];
/** Byte lengths around the 1-, 2- and 3-byte varint length boundaries. */
const BYTE_LENGTHS = [0, 1, 5, 127, 128, 300, 16383, 16384, 70000];

function bytes(): Buffer {
  const n = rnd(5) === 0 ? pick(BYTE_LENGTHS) : rnd(40);
  // Half of the large ones with room around them, as the gateway decodes them (some get encoded in place).
  const b = rnd(2) === 0 ? allocWithRoom(n) : Buffer.allocUnsafe(n);
  for (let i = 0; i < b.length; i++) b[i] = rnd(256);
  return b;
}

function value(t: FieldType, depth: number): unknown {
  switch (t.kind) {
    case 'message': return depth > 3 || rnd(4) === 0 ? undefined : message(schema.message(t.fullName), depth + 1);
    // proto3 enums are open: unknown numbers (negative ones are 10-byte varints) encode too.
    case 'enum': return rnd(5) === 0 ? pick([-1, -(2 ** 31), 300]) : pick([...t.info.byNumber.keys()]);
    case 'scalar':
      switch (t.scalar) {
        case 'int64': return pick(I64);
        case 'uint64': return pick(U64);
        case 'int32': return pick(I32);
        case 'uint32': return pick(I32.filter((n) => n >= 0));
        case 'bool': return rnd(2) === 0;
        case 'string': return pick(STRINGS);
        case 'bytes': return bytes();
        case 'double': case 'float': return rnd(100) / 4;
      }
  }
}

/** A message in ts-proto's shape (defaults where a field is left out, oneofs as {$case, value}). */
function message(info: MessageInfo, depth = 0): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  for (const mem of info.members) {
    if (mem.kind === 'oneof') {
      const f = rnd(mem.oneof.members.length + 1) === 0 ? undefined : pick(mem.oneof.members);
      const v = f === undefined ? undefined : value(f.type, depth);
      m[mem.oneof.tsName] = f === undefined || v === undefined ? undefined : { $case: f.tsName, value: v };
      continue;
    }
    const f = mem.field;
    if (f.repeated) {
      m[f.tsName] = Array.from({ length: rnd(4) }, () => value(f.type, depth)).filter((v) => v !== undefined);
      continue;
    }
    const v = value(f.type, depth);
    m[f.tsName] = v;
  }
  return m;
}

const CASES: readonly (readonly [string, string])[] = [
  ['put', 'etcdserverpb.PutRequest'], ['deleteRange', 'etcdserverpb.DeleteRangeRequest'], ['txn', 'etcdserverpb.TxnRequest'],
  ['compaction', 'etcdserverpb.CompactionRequest'], ['leaseGrant', 'etcdserverpb.LeaseGrantRequest'],
  ['leaseRevoke', 'etcdserverpb.LeaseRevokeRequest'], ['alarm', 'etcdserverpb.AlarmRequest'],
  ['authEnable', 'etcdserverpb.AuthEnableRequest'], ['authDisable', 'etcdserverpb.AuthDisableRequest'],
  ['authUserDelete', 'etcdserverpb.AuthUserDeleteRequest'], ['authUserGrantRole', 'etcdserverpb.AuthUserGrantRoleRequest'],
  ['authUserRevokeRole', 'etcdserverpb.AuthUserRevokeRoleRequest'], ['authRoleAdd', 'etcdserverpb.AuthRoleAddRequest'],
  ['authRoleDelete', 'etcdserverpb.AuthRoleDeleteRequest'], ['authRoleGrantPermission', 'etcdserverpb.AuthRoleGrantPermissionRequest'],
  ['authRoleRevokePermission', 'etcdserverpb.AuthRoleRevokePermissionRequest'],
];

/** The internal.proto wrappers (not in the gateway's schema), built by hand. */
function internalCase(): InternalRequest['request'] {
  switch (rnd(3)) {
    case 0: return { $case: 'authenticate', value: { name: pick(STRINGS), simpleToken: pick(STRINGS) } };
    case 1: return { $case: 'authUserAdd', value: { name: pick(STRINGS), passwordHash: bytes(), options: rnd(2) === 0 ? undefined : { noPassword: rnd(2) === 0 } } };
    default: return { $case: 'authUserChangePassword', value: { name: pick(STRINGS), passwordHash: bytes() } };
  }
}

function randomRequest(): InternalRequest {
  const header = rnd(6) === 0 ? undefined : { ID: pick(U64), username: pick(STRINGS), authRevision: pick(U64) };
  let request: InternalRequest['request'];
  if (rnd(8) === 0) request = internalCase();
  else if (rnd(20) === 0) request = undefined;
  else {
    const [c, type] = pick(CASES);
    request = { $case: c, value: message(schema.message(type)) } as InternalRequest['request'];
  }
  return { header, request };
}

test('encodeExact writes the same bytes as BinaryWriter for every kind of proposed request', () => {
  const seen = new Set<string>();
  let inPlace = 0;
  for (let i = 0; i < 3000; i++) {
    const req = randomRequest();
    seen.add(req.request?.$case ?? 'none');
    const expected = Buffer.from(InternalRequest.encode(req, new BinaryWriter()).finish());
    const got = encodeExact(InternalRequest.encode, req);
    assert.ok(got.equals(expected), `request ${i} (${req.request?.$case}): ${got.length} bytes vs ${expected.length}`);
    if (got.buffer.byteLength > got.length) inPlace++;
    assert.deepEqual(InternalRequest.decode(got), InternalRequest.decode(expected));
  }
  assert.equal(seen.size, CASES.length + 3 + 1, `cases covered: ${[...seen].join(' ')}`);
  assert.ok(inPlace > 10, `${inPlace} requests encoded around a value`);
});

test('encodeExact leaves the prefix for the caller, and the buffer is exactly prefix + message', () => {
  const req: InternalRequest = { header: { ID: 7n, username: '', authRevision: 0n }, request: { $case: 'compaction', value: { revision: 5n, physical: true } } };
  const expected = Buffer.from(InternalRequest.encode(req).finish());
  const got = encodeExact(InternalRequest.encode, req, 8);
  assert.equal(got.length, 8 + expected.length);
  assert.ok(got.subarray(8).equals(expected));
  // Its own ArrayBuffer, of its own size (no shared pool slab kept alive by a raft entry).
  assert.equal(got.buffer.byteLength, got.length);
});

test('a field of the wrong type fails before anything is written', () => {
  const bad = { header: undefined, request: { $case: 'put', value: { key: 42, value: Buffer.alloc(0), lease: 0n } } } as unknown as InternalRequest;
  assert.throws(() => encodeExact(InternalRequest.encode, bad));
  const badInt = { header: { ID: 1n, username: '', authRevision: 0n }, request: { $case: 'alarm', value: { action: 1.5, memberID: 0n, alarm: 0 } } } as unknown as InternalRequest;
  assert.throws(() => encodeExact(InternalRequest.encode, badInt));
});

const putRequest = (key: Buffer, value: Buffer, username = ''): InternalRequest => ({
  header: { ID: 2n ** 63n + 9n, username, authRevision: 3n },
  request: { $case: 'put', value: { key, value, lease: 2n ** 40n, prevKv: true, ignoreValue: false, ignoreLease: true } },
});

test('a large value allocated with room is not copied: the proposal is laid out around it, once', () => {
  const value = allocWithRoom(1 << 20);
  for (let i = 0; i < value.length; i++) value[i] = (i * 13) & 0xff;
  const copy = Buffer.from(value);
  const req = putRequest(Buffer.from('some/key'), value, 'root');
  const expected = Buffer.from(InternalRequest.encode(req).finish());
  const got = encodeExact(InternalRequest.encode, req, 8);
  assert.ok(got.buffer === value.buffer, 'encoded around the value');
  assert.ok(got.subarray(8).equals(expected));
  assert.ok(value.equals(copy), 'the value itself is untouched');
  // The room is handed out once: encoding the same request again copies (and is still right).
  const again = encodeExact(InternalRequest.encode, req, 8);
  assert.ok(again.buffer !== value.buffer);
  assert.ok(again.subarray(8).equals(expected));
  assert.ok(got.subarray(8).equals(expected), 'the first encoding is not disturbed by the second');
});

test('a value without room, or with too little for what comes before it, is copied', () => {
  const plain = Buffer.alloc(1 << 17, 7);
  const req1 = putRequest(Buffer.from('k'), plain);
  const got1 = encodeExact(InternalRequest.encode, req1, 8);
  assert.ok(got1.buffer !== plain.buffer);
  assert.ok(got1.subarray(8).equals(Buffer.from(InternalRequest.encode(req1).finish())));
  // A key longer than the room before the value.
  const roomy = allocWithRoom(1 << 17).fill(5);
  const req2 = putRequest(Buffer.alloc(ROOM_BEFORE, 0x6b), roomy);
  const got2 = encodeExact(InternalRequest.encode, req2, 8);
  assert.ok(got2.buffer !== roomy.buffer);
  assert.ok(got2.subarray(8).equals(Buffer.from(InternalRequest.encode(req2).finish())));
  // Small values get no room at all.
  assert.equal(allocWithRoom(ROOM_MIN_VALUE_BYTES - 1).buffer.byteLength < ROOM_MIN_VALUE_BYTES + ROOM_BEFORE, true);
});

test('in a txn, a roomy value is encoded in place when the rest of the request fits its room', () => {
  const op = (key: string, value: Buffer) => ({ request: { $case: 'requestPut' as const, value: { key: Buffer.from(key), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } });
  const txn = (ops: ReturnType<typeof op>[]): InternalRequest => ({ header: { ID: 1n, username: '', authRevision: 0n }, request: { $case: 'txn', value: { compare: [], success: ops, failure: [] } } });
  const big = allocWithRoom(ROOM_MIN_VALUE_BYTES * 2).fill(2);
  const one = txn([op('a', Buffer.from('small')), op('b', big)]);
  const got = encodeExact(InternalRequest.encode, one);
  assert.ok(got.buffer === big.buffer, 'encoded in place');
  assert.ok(got.equals(Buffer.from(InternalRequest.encode(one).finish())));
  // Two large values: neither has room for the other, both are copied.
  const a = allocWithRoom(ROOM_MIN_VALUE_BYTES).fill(3);
  const b = allocWithRoom(ROOM_MIN_VALUE_BYTES * 2).fill(4);
  for (const two of [txn([op('a', a), op('b', b)]), txn([op('b', b), op('a', a)])]) {
    const got2 = encodeExact(InternalRequest.encode, two);
    assert.ok(got2.buffer !== a.buffer && got2.buffer !== b.buffer, 'copied');
    assert.ok(got2.equals(Buffer.from(InternalRequest.encode(two).finish())));
  }
});
