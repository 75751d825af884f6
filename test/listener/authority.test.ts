// The client-port authority rewriter as a pure byte transform: HTTP/2 client bytes in, what
// Node's HTTP/2 server is handed out. (The end-to-end check is test/compat/etcdctl-endpoints.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthorityRewriter, fixAuthority } from '../../src/listener/authority.js';
import { HpackDecoder, huffmanEncode } from '../../src/util/hpack.js';
import { frame, PREFACE } from '../helpers/h2.js';

interface Frame { type: number; flags: number; stream: number; payload: Buffer }
function parse(bytes: Buffer): Frame[] {
  assert.deepEqual(bytes.subarray(0, 24), PREFACE);
  const frames: Frame[] = [];
  for (let p = 24; p < bytes.length;) {
    const len = bytes.readUIntBE(p, 3);
    frames.push({ type: bytes[p + 3]!, flags: bytes[p + 4]!, stream: bytes.readUInt32BE(p + 5), payload: bytes.subarray(p + 9, p + 9 + len) });
    p += 9 + len;
  }
  return frames;
}

/** Literal with incremental indexing, name by static index 1 (:authority), Huffman value. */
function authorityIndexed(value: string): Buffer {
  const h = huffmanEncode(value);
  assert.ok(h.length < 127);
  return Buffer.concat([Buffer.from([0x41, 0x80 | h.length]), h]);
}

const SETTINGS = frame(0x4, 0, 0, Buffer.from('000400100000', 'hex'));
const DATA1 = frame(0x0, 0, 1, Buffer.from('grpc message one'));
const DATA3 = frame(0x0, 0x1, 3, Buffer.alloc(40_000, 7)); // larger than one chunk: straddles

/** Two requests as grpc-go makes them: the second refers to the first's :authority by dynamic index. */
function clientBytes(authority: string): Buffer {
  // :method POST, :scheme http, :path (literal, indexed) /etcdserverpb.KV/Range, :authority.
  const block1 = Buffer.concat([Buffer.from([0x83, 0x86, 0x44, 0x16]), Buffer.from('/etcdserverpb.KV/Range'), authorityIndexed(authority)]);
  // HEADERS with PADDED and PRIORITY: pad length 3, priority 5 bytes, the block, 3 bytes padding.
  const headers1 = frame(0x1, 0x4 | 0x8 | 0x20, 1, Buffer.concat([Buffer.from([3]), Buffer.from('0000000010', 'hex'), block1, Buffer.alloc(3)]));
  // :method, :scheme, dynamic index 62 (:authority, the newest entry), then te: ok (indexed too).
  const block2 = Buffer.from([0x83, 0x86, 0xbe, 0x40, 0x02, 0x74, 0x65, 0x02, 0x6f, 0x6b]);
  const headers2 = frame(0x1, 0x0, 3, block2.subarray(0, 4));
  const cont2 = frame(0x9, 0x4, 3, block2.subarray(4));
  return Buffer.concat([PREFACE, SETTINGS, headers1, DATA1, headers2, cont2, DATA3]);
}

function run(input: Buffer, chunkSize: number): { out: Buffer; pieces: Buffer[]; rw: AuthorityRewriter } {
  const rw = new AuthorityRewriter();
  const pieces: Buffer[] = [];
  for (let p = 0; p < input.length; p += chunkSize) pieces.push(...rw.feed(input.subarray(p, p + chunkSize)));
  return { out: Buffer.concat(pieces), pieces, rw };
}

test('fixAuthority drops an http(s) scheme from a valid authority, and only that', () => {
  assert.equal(fixAuthority('http://127.0.0.1:2379'), '127.0.0.1:2379');
  assert.equal(fixAuthority('HTTPS://[::1]:2379'), '[::1]:2379');
  assert.equal(fixAuthority('127.0.0.1:2379'), undefined);
  assert.equal(fixAuthority('http://host:1/path'), undefined); // still invalid: nghttp2 decides
  assert.equal(fixAuthority('unix:///tmp/sock'), undefined);
  assert.equal(fixAuthority('http://'), undefined);
});

test('a scheme in :authority is dropped in every later block; other frames pass unchanged', () => {
  const input = clientBytes('http://127.0.0.1:2379');
  for (const chunk of [input.length, 16_384, 1000, 7, 1]) {
    const { out, rw } = run(input, chunk);
    const frames = parse(out);
    assert.deepEqual(frames.map((f) => [f.type, f.stream]), [[4, 0], [1, 1], [0, 1], [1, 3], [0, 3]], `chunk ${chunk}`);
    assert.deepEqual(frames[0]!.payload, SETTINGS.subarray(9));
    assert.deepEqual(frames[2]!.payload, DATA1.subarray(9));
    assert.deepEqual(frames[4]!.payload, DATA3.subarray(9));
    assert.equal(frames[4]!.flags, 0x1);
    // What the server's decoder sees: literals only, its dynamic table stays empty.
    const server = new HpackDecoder();
    const h1 = server.decode(frames[1]!.payload.subarray(5));
    assert.equal(frames[1]!.flags, 0x4 | 0x20); // padding dropped, priority kept
    assert.deepEqual(frames[1]!.payload.subarray(0, 5), Buffer.from('0000000010', 'hex'));
    assert.deepEqual(h1.find((f) => f.name === ':authority')?.value, '127.0.0.1:2379');
    const h2 = server.decode(frames[3]!.payload);
    assert.equal(frames[3]!.flags, 0x4);
    assert.deepEqual(h2.map((f) => [f.name, f.value]), [[':method', 'POST'], [':scheme', 'http'], [':authority', '127.0.0.1:2379'], ['te', 'ok']]);
    assert.equal(server.tableSize, 0);
    assert.equal(rw.rewrites, 2);
  }
});

test('a valid :authority: the output is the input, DATA as slices of it (no copies)', () => {
  const input = clientBytes('127.0.0.1:2379');
  for (const chunk of [input.length, 1000, 1]) {
    const { out, rw } = run(input, chunk);
    assert.deepEqual(out, input, `chunk ${chunk}`);
    assert.equal(rw.rewrites, 0);
  }
  const { pieces } = run(input, input.length);
  const big = pieces.find((p) => p.length >= 40_000);
  assert.ok(big !== undefined && big.buffer === input.buffer, 'DATA forwarded as a slice of the input');
});

test('a re-encoded block larger than a frame is split into HEADERS + CONTINUATION', () => {
  const long = Buffer.concat([Buffer.from([0x00, 0x06]), Buffer.from('x-long'), Buffer.from([0x7f, 0xa1, 0x9b, 0x01]), Buffer.alloc(20_000, 0x61)]);
  assert.equal(127 + (0xa1 & 0x7f) + ((0x9b & 0x7f) << 7) + (0x01 << 14), 20_000); // RFC 7541 5.1
  const block = Buffer.concat([Buffer.from([0x83]), authorityIndexed('https://h:1'), long]);
  const input = Buffer.concat([PREFACE, frame(0x1, 0x1, 1, block.subarray(0, 10_000)), frame(0x9, 0x4, 1, block.subarray(10_000))]);
  const frames = parse(run(input, 4096).out);
  assert.deepEqual(frames.map((f) => [f.type, f.flags]), [[1, 0x1], [9, 0x4]]);
  assert.ok(frames.every((f) => f.payload.length <= 16_384));
  const fields = new HpackDecoder().decode(Buffer.concat(frames.map((f) => f.payload)));
  assert.deepEqual(fields.map((f) => [f.name, f.value.length]), [[':method', 4], [':authority', 3], ['x-long', 20_000]]);
});

test('malformed input is an error (the connection is then closed)', () => {
  const rw = new AuthorityRewriter();
  assert.throws(() => rw.feed(Buffer.concat([PREFACE, frame(0x9, 0x4, 1, Buffer.from([0x82]))])));
  const rw2 = new AuthorityRewriter();
  assert.throws(() => rw2.feed(Buffer.concat([PREFACE, frame(0x1, 0x4, 1, Buffer.from([0xff, 0xff]))])));
});

test('bounds: a header frame above 16 KiB, a block above 1 MiB, an HPACK bomb', () => {
  assert.throws(() => new AuthorityRewriter().feed(Buffer.concat([PREFACE, frame(0x1, 0x4, 1, Buffer.alloc(16_385))])), /SETTINGS_MAX_FRAME_SIZE/);
  const rw = new AuthorityRewriter();
  rw.feed(Buffer.concat([PREFACE, frame(0x1, 0x0, 1, Buffer.alloc(16_384))]));
  assert.throws(() => {
    for (let i = 0; i < 70; i++) rw.feed(frame(0x9, 0x0, 1, Buffer.alloc(16_384)));
  }, /too large/);
  // One 4 KiB-ish table entry, then a block of 300 one-byte references to it: 1.2 MB decoded.
  const bomb = new AuthorityRewriter();
  const entry = Buffer.concat([Buffer.from([0x40, 0x01, 0x78, 0x7f, 0xa1, 0x1e]), Buffer.alloc(4000, 0x61)]); // x: 4000 bytes
  assert.throws(() => bomb.feed(Buffer.concat([PREFACE, frame(0x1, 0x4, 1, entry), frame(0x1, 0x4, 3, Buffer.alloc(300, 0xbe))])), /header list too large/);
});

// The first header block decides (the listener sent its own SETTINGS, whose ACK is dropped).
const ACK = frame(0x4, 0x1, 0, Buffer.alloc(0));
const PING = frame(0x6, 0, 0, Buffer.alloc(8));
const WINDOW = frame(0x8, 0, 0, Buffer.from('00010000', 'hex'));
/** :method POST, :scheme http, :path literal, :authority indexed-literal. */
const request = (authority: string, stream = 1): Buffer =>
  frame(0x1, 0x4, stream, Buffer.concat([Buffer.from([0x83, 0x86, 0x44, 0x16]), Buffer.from('/etcdserverpb.KV/Range'), authorityIndexed(authority)]));
const CN_FIELD = [{ name: 'x-etcd-client-cert-cn', value: 'sealed root', neverIndex: true }];

test('ACK then a clean first block: through from the block\'s end, the ACK dropped, the rest as it came', () => {
  const input = Buffer.concat([PREFACE, SETTINGS, WINDOW, ACK, request('127.0.0.1:2379'), DATA1]);
  for (const chunk of [input.length, 10, 1]) {
    const rw = new AuthorityRewriter(CN_FIELD);
    const pieces: Buffer[] = [];
    let decidedAt = -1;
    for (let p = 0; p < input.length; p += chunk) {
      assert.ok(rw.through || rw.deciding, `chunk ${chunk}: undecided or through, never on the rewriter`);
      pieces.push(...rw.feed(input.subarray(p, p + chunk)));
      if (rw.through && decidedAt < 0) decidedAt = p + chunk;
    }
    assert.ok(rw.through);
    // The block is the last bytes parsed: anything after it in its chunk passes unparsed.
    assert.ok(decidedAt >= input.length - DATA1.length && decidedAt < input.length - DATA1.length + chunk, `chunk ${chunk}`);
    assert.deepEqual(Buffer.concat(pieces), Buffer.concat([PREFACE, SETTINGS, WINDOW, request('127.0.0.1:2379'), DATA1]), `chunk ${chunk}`);
  }
  const rw = new AuthorityRewriter();
  rw.feed(Buffer.concat([PREFACE, ACK, request('h:1')]));
  // Through: later bytes (a scheme in a later block, garbage even) are handed on untouched.
  const later = Buffer.concat([request('http://h:1', 3), Buffer.from([1, 2, 3])]);
  const out = rw.feed(later);
  assert.equal(out.length, 1);
  assert.equal(out[0], later);
});

test('a clean first block before the ACK: not handed over, through once the ACK is dropped', () => {
  const rw = new AuthorityRewriter();
  const out = rw.feed(Buffer.concat([PREFACE, SETTINGS, request('h:1')]));
  assert.deepEqual([rw.deciding, rw.through], [false, false]);
  assert.deepEqual(Buffer.concat(out), Buffer.concat([PREFACE, SETTINGS, request('h:1')]));
  // A second block before the ACK is still checked.
  assert.deepEqual(Buffer.concat(rw.feed(request('h:1', 3))), request('h:1', 3));
  assert.deepEqual(Buffer.concat(rw.feed(Buffer.concat([ACK, DATA1]))), DATA1);
  assert.equal(rw.through, true);
  // Only the first ACK was the listener's.
  assert.deepEqual(Buffer.concat(rw.feed(ACK)), ACK);
});

test('a scheme in the first block: on the rewriter for life (the server\'s HPACK table differs), one ACK dropped', () => {
  const rw = new AuthorityRewriter();
  const frames = parse(Buffer.concat(rw.feed(Buffer.concat([PREFACE, ACK, request('http://h:1'), ACK, request('h:1', 3)]))));
  assert.deepEqual([rw.deciding, rw.through], [false, false]);
  assert.deepEqual(frames.map((f) => [f.type, f.flags]), [[1, 0x4], [4, 0x1], [1, 0x4]]);
  const server = new HpackDecoder();
  assert.equal(server.decode(frames[0]!.payload).find((f) => f.name === ':authority')?.value, 'h:1');
  assert.equal(server.decode(frames[2]!.payload).find((f) => f.name === ':authority')?.value, 'h:1');
  assert.equal(rw.rewrites, 1);
});

test('fields to add (a TLS client CN): none on a hand-over; in every block, the first included, once on the rewriter', () => {
  // Handed over: the block passes as it came, a client's own CN header with it (unsealed: worthless).
  const forged = frame(0x1, 0x4, 1, Buffer.concat([Buffer.from([0x83, 0x86, 0x44, 0x01, 0x2f, 0x41, 0x03]), Buffer.from('h:1'), Buffer.from([0x00, 0x15]), Buffer.from('x-etcd-client-cert-cn'), Buffer.from([0x04]), Buffer.from('root')]));
  const handed = new AuthorityRewriter(CN_FIELD);
  assert.deepEqual(Buffer.concat(handed.feed(Buffer.concat([PREFACE, ACK, forged]))), Buffer.concat([PREFACE, forged]));
  assert.equal(handed.through, true);
  const cnOf = (bytes: Buffer): string[] => {
    const server = new HpackDecoder();
    return parse(bytes).filter((f) => f.type === 1).map((f) => server.decode(f.payload).filter((h) => h.name === 'x-etcd-client-cert-cn').map((h) => h.value).join());
  };
  // A PING first: the server must answer it, so the connection goes on the rewriter before its block.
  const pinged = new AuthorityRewriter(CN_FIELD);
  const out = Buffer.concat(pinged.feed(Buffer.concat([PREFACE, PING, ACK])));
  assert.equal(pinged.deciding, false);
  const all = Buffer.concat([out, ...pinged.feed(Buffer.concat([forged, request('h:1', 3)]))]);
  assert.deepEqual(cnOf(all), ['sealed root', 'sealed root']); // the client's copy dropped
  assert.equal(pinged.through, false);
  // The listener gave up waiting (settle): the same.
  const settled = new AuthorityRewriter(CN_FIELD);
  settled.feed(Buffer.concat([PREFACE, ACK]));
  settled.settle();
  assert.deepEqual(cnOf(Buffer.concat([PREFACE, ...settled.feed(request('h:1'))])), ['sealed root']);
  // Without fields to add, a settled connection still passes through after a clean block.
  const plain = new AuthorityRewriter();
  plain.feed(Buffer.concat([PREFACE, PING, ACK]));
  plain.feed(request('h:1'));
  assert.equal(plain.through, true);
  assert.throws(() => new AuthorityRewriter().feed(Buffer.concat([PREFACE, frame(0x4, 0x1, 0, Buffer.alloc(6))])), /ACK with a payload/);
});
