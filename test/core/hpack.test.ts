// The HPACK codec against RFC 7541 Appendix C (decoded fields and the dynamic table after each
// block, one decoder per connection as in the RFC's sequences), plus the encoder the authority
// rewriter uses: literals that round-trip and leave a decoder's dynamic table alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeLiterals, HpackDecoder, HpackError, huffmanDecode, huffmanEncode } from '../../src/util/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (d: HpackDecoder, block: string): [string, string][] => d.decode(hex(block)).map((f) => [f.name, f.value]);

const REQ1: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: [string, string][] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const TABLE3: [string, string][] = [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']];

test('C.2: single representations (incremental, without indexing, never indexed, indexed)', () => {
  let d = new HpackDecoder();
  assert.deepEqual(pairs(d, '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'), [['custom-key', 'custom-header']]);
  assert.deepEqual(d.dynamicTable(), [['custom-key', 'custom-header']]);
  assert.equal(d.tableSize, 55);
  d = new HpackDecoder();
  assert.deepEqual(pairs(d, '040c 2f73 616d 706c 652f 7061 7468'), [[':path', '/sample/path']]);
  assert.equal(d.tableSize, 0);
  d = new HpackDecoder();
  const never = d.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'));
  assert.deepEqual(never, [{ name: 'password', value: 'secret', neverIndex: true }]);
  assert.equal(d.tableSize, 0);
  assert.deepEqual(pairs(new HpackDecoder(), '82'), [[':method', 'GET']]);
});

test('C.3: requests without Huffman, one connection', () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d, '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'), REQ1);
  assert.equal(d.tableSize, 57);
  assert.deepEqual(pairs(d, '8286 84be 5808 6e6f 2d63 6163 6865'), REQ2);
  assert.equal(d.tableSize, 110);
  assert.deepEqual(pairs(d, '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'), REQ3);
  assert.deepEqual(d.dynamicTable(), TABLE3);
  assert.equal(d.tableSize, 164);
});

test('C.4: the same requests with Huffman', () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d, '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'), REQ1);
  assert.deepEqual(pairs(d, '8286 84be 5886 a8eb 1064 9cbf'), REQ2);
  assert.deepEqual(pairs(d, '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'), REQ3);
  assert.deepEqual(d.dynamicTable(), TABLE3);
  assert.equal(d.tableSize, 164);
});

const RESP1: [string, string][] = [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']];
const RESP2: [string, string][] = [[':status', '307'], ...RESP1.slice(1)];
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESP3: [string, string][] = [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
  ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]];
const RTABLE2: [string, string][] = [[':status', '307'], ['location', 'https://www.example.com'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['cache-control', 'private']];
const RTABLE3: [string, string][] = [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT']];

test('C.5: responses without Huffman, 256-byte table: evictions', () => {
  const d = new HpackDecoder(256);
  assert.deepEqual(pairs(d, `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
    2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`), RESP1);
  assert.equal(d.tableSize, 222);
  assert.deepEqual(pairs(d, '4803 3330 37c1 c0bf'), RESP2);
  assert.deepEqual(d.dynamicTable(), RTABLE2);
  assert.equal(d.tableSize, 222);
  assert.deepEqual(pairs(d, `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
    54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
    5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`), RESP3);
  assert.deepEqual(d.dynamicTable(), RTABLE3);
  assert.equal(d.tableSize, 215);
});

test('C.6: the same responses with Huffman', () => {
  const d = new HpackDecoder(256);
  assert.deepEqual(pairs(d, `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
    2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`), RESP1);
  assert.equal(d.tableSize, 222);
  assert.deepEqual(pairs(d, '4883 640e ffc1 c0bf'), RESP2);
  assert.deepEqual(d.dynamicTable(), RTABLE2);
  assert.deepEqual(pairs(d, `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
    77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
    9587 3160 65c0 03ed 4ee5 b106 3d50 07`), RESP3);
  assert.deepEqual(d.dynamicTable(), RTABLE3);
  assert.equal(d.tableSize, 215);
});

test('Huffman: every byte value round-trips; bad padding and EOS are errors', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  assert.equal(huffmanDecode(huffmanEncode(all)), all);
  assert.deepEqual(huffmanEncode('www.example.com'), hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'));
  assert.throws(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff ff')), HpackError); // 8+ padding bits
  assert.throws(() => huffmanDecode(hex('00')), HpackError); // '0' + 3 zero bits: padding not all ones
  assert.throws(() => huffmanDecode(hex('ffff fffc')), HpackError); // EOS (30 ones)
});

test('table size updates: shrink evicts, only at the block start, never above the limit', () => {
  const d = new HpackDecoder();
  pairs(d, '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d');
  assert.equal(d.tableSize, 57);
  assert.deepEqual(pairs(d, '20 82'), [[':method', 'GET']]); // update to 0 empties the table
  assert.equal(d.tableSize, 0);
  assert.throws(() => d.decode(hex('be')), HpackError); // index 62 no longer exists
  assert.deepEqual(pairs(d, '3fe1 1f 82'), [[':method', 'GET']]); // back to 4096 (multi-byte integer)
  assert.throws(() => d.decode(hex('82 20')), HpackError);
  assert.throws(() => d.decode(hex('3fe2 1f')), HpackError); // 4097 > SETTINGS_HEADER_TABLE_SIZE
  assert.throws(() => d.decode(hex('41 0f77 7777')), HpackError); // truncated string
});

test('encodeLiterals: round-trips (long values: multi-byte integers) and never touches the dynamic table', () => {
  const fields = [
    { name: ':method', value: 'POST', neverIndex: false },
    { name: ':authority', value: '127.0.0.1:2379', neverIndex: false },
    { name: 'x-long', value: 'v'.repeat(1337), neverIndex: false },
    { name: 'authorization', value: 'secret', neverIndex: true },
  ];
  const d = new HpackDecoder();
  pairs(d, '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d');
  const before = d.dynamicTable();
  const block = encodeLiterals(fields);
  assert.equal(block[0], 0x02); // :method by its first static name index (2), without indexing
  assert.deepEqual(d.decode(block), fields);
  assert.deepEqual(d.dynamicTable(), before);
  // C.2.2's bytes are exactly this representation.
  assert.deepEqual(encodeLiterals([{ name: ':path', value: '/sample/path', neverIndex: false }]), hex('040c 2f73 616d 706c 652f 7061 7468'));
});
