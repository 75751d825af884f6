// goJsonString against what Go's encoding/json writes for a string, and a property check over random
// strings: the answer parses back (as JSON) to the input with lone surrogates replaced, and carries
// no raw character Go escapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goJsonString } from '../../src/gateway/go-string.js';

test('goJsonString writes what encoding/json writes', () => {
  const cases: [string, string][] = [
    ['', '""'],
    ['/bench/put/k0001', '"/bench/put/k0001"'],
    ['cluster_id', '"cluster_id"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['\n\r\t', '"\\n\\r\\t"'],
    ['\b\f\x00\x1f', '"\\u0008\\u000c\\u0000\\u001f"'],
    ['<a&b>', '"\\u003ca\\u0026b\\u003e"'],
    ['\u2028x\u2029', '"\\u2028x\\u2029"'],
    ['é€😀', '"é€😀"'],
    ['x\ud800y', '"x\ufffdy"'],
    ['\udc00', '"\ufffd"'],
    ['\x7f', '"\x7f"'],
  ];
  for (const [input, want] of cases) assert.equal(goJsonString(input), want, JSON.stringify(input));
});

test('goJsonString round-trips random strings through JSON.parse', () => {
  const alphabet = ['a', 'Z', '0', '/', ' ', '"', '\\', '\n', '\x01', '\x1f', '<', '>', '&', '\u2028', '\u2029', 'é', '😀', '\ud800', '\udfff', '\x7f', '~'];
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    // Half the strings use only characters without an escape (the fast path), half any.
    const pool = i % 2 === 0 ? alphabet.slice(0, 5).concat(['é', '😀', '\x7f', '~']) : alphabet;
    let s = '';
    for (let n = rand(24); n > 0; n--) s += pool[rand(pool.length)];
    const out = goJsonString(s);
    const wellFormed = s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
    assert.equal(JSON.parse(out), wellFormed, JSON.stringify(s));
    assert.doesNotMatch(out.slice(1, -1), /[\x00-\x1f<>&\u2028\u2029]|(?<!\\)"/, JSON.stringify(s));
  }
});
