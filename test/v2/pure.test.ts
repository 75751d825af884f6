// Unit tests of the pure parts: path cleaning, the key schema, form parsing and request dispatch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorBody } from '../../src/http/v2/errors.js';
import { parseForm } from '../../src/http/v2/form.js';
import { parseKeysRequest } from '../../src/http/v2/params.js';
import { eventJson } from '../../src/http/v2/render.js';
import { cleanPath, inOrderName, KeySchema, normalizeKey, V2Error } from '../../src/v2/index.js';
import { components, depthOf, parentOf } from '../../src/v2/path.js';
import { candidatesOfResponse } from '../../src/v2/watch.js';
import { Event_EventType, type Event } from '../../src/gen/mvccpb/kv.js';

test('cleanPath and normalizeKey follow Go path.Clean', () => {
  assert.equal(cleanPath('/a//b/./c/../d/'), '/a/b/d');
  assert.equal(normalizeKey(''), '/');
  assert.equal(normalizeKey('/'), '/');
  assert.equal(normalizeKey('a/b/'), '/a/b');
  assert.equal(cleanPath('/../x'), '/x');
  // Clean paths come back as they are; every other shape goes through the components.
  for (const clean of ['/', '/a', '/a/b', '/a/..b', '/a/.b', '/a/b..', '/.a/b.', '/_x/y']) assert.equal(cleanPath(clean), clean);
  const cases: [string, string][] = [
    ['/a/', '/a'], ['//', '/'], ['/.', '/'], ['/..', '/'], ['/a/.', '/a'], ['/a/..', '/'], ['/a/./b', '/a/b'],
    ['/a/../b', '/b'], ['/a//b', '/a/b'], ['/a/b/../../..', '/'], ['a/b', 'a/b'], ['../a', '../a'], ['', '.'],
  ];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});

test('key schema: depth-encoded keys, one range per directory level', () => {
  const k = new KeySchema('/v2');
  assert.equal(k.fileKey('/a/b').toString(), '/v2/002/a/b');
  assert.equal(k.dirKey('/a').toString(), '/v2/001/a/');
  assert.equal(k.birthKey('/a').toString(), '/v2/001/a\x01');
  for (const p of ['/a', '/a/b/c', '/ünï/ç😀']) {
    const n = k.nodeKeys(p);
    assert.deepEqual([n.file, n.dir, n.birth, n.ttl], [k.fileKey(p), k.dirKey(p), k.birthKey(p), k.ttlKey(p)], p);
  }
  assert.equal(parentOf('/a/b/c'), '/a/b');
  assert.equal(parentOf('/a'), '/');
  assert.equal(parentOf('/'), '/');
  assert.equal(k.levelRange('/', 1).key.toString(), '/v2/001/');
  assert.equal(k.levelRange('/a', 2).key.toString(), '/v2/003/a/');
  assert.deepEqual(k.parse(Buffer.from('/v2/002/a/b/')), { path: '/a/b', kind: 'dir' });
  assert.deepEqual(k.parse(Buffer.from('/v2/001/a')), { path: '/a', kind: 'file' });
  assert.equal(k.parse(Buffer.from('/v2/event')), undefined);
  assert.equal(new KeySchema('/custom/').fileKey('/x').toString(), '/custom/001/x');
});

test('parseForm: first value wins, + and escapes, Go errors', () => {
  const r = parseForm('value=a+b%21&value=c&x');
  assert.ok(r.ok);
  assert.equal(r.values.get('value'), 'a b!');
  assert.equal(r.values.get('x'), '');
  assert.deepEqual(parseForm('a=%zz'), { ok: false, cause: 'invalid URL escape "%zz"' });
  assert.deepEqual(parseForm('a=1;b=2'), { ok: false, cause: 'invalid semicolon separator in query' });
});

function form(q: string): Map<string, string> {
  const r = parseForm(q);
  assert.ok(r.ok);
  return r.values;
}

function v2err(f: () => unknown): V2Error {
  try { f(); } catch (e) { if (e instanceof V2Error) return e; throw e; }
  assert.fail('expected a V2Error');
}

test('parseKeysRequest: validation order and dispatch', () => {
  assert.equal(v2err(() => parseKeysRequest('GET', '/a', form('prevIndex=x&recursive=x'))).code, 203);
  assert.equal(v2err(() => parseKeysRequest('GET', '/a', form('recursive='))).cause, 'invalid value for "recursive"');
  assert.equal(v2err(() => parseKeysRequest('PUT', '/a', form('prevExist=x'))).cause, 'invalid value for prevExist');
  assert.equal(v2err(() => parseKeysRequest('HEAD', '/a', form('wait=true'))).code, 209);
  assert.equal(v2err(() => parseKeysRequest('PUT', '/a', form('refresh=true'))).code, 212);
  const kindOf = (m: 'PUT' | 'DELETE' | 'POST', q: string): string => {
    const op = parseKeysRequest(m, '/a', form(q));
    return op.kind === 'write' ? op.request.kind : op.kind;
  };
  assert.equal(kindOf('PUT', 'value=1'), 'set');
  assert.equal(kindOf('PUT', 'prevExist=false&prevValue=x'), 'create');
  assert.equal(kindOf('PUT', 'prevExist=true'), 'update');
  assert.equal(kindOf('PUT', 'prevExist=true&prevIndex=3'), 'compareAndSwap');
  assert.equal(kindOf('PUT', 'prevValue=x'), 'compareAndSwap');
  assert.equal(kindOf('DELETE', 'prevIndex=2'), 'compareAndDelete');
  assert.equal(kindOf('DELETE', 'recursive=true'), 'delete');
  assert.equal(kindOf('POST', ''), 'post');
});

test('rendering: Go field order, omitempty, escaping, noValueOnSuccess', () => {
  const node = { key: '/a', dir: false, value: '<&>', modifiedIndex: 5, createdIndex: 4 };
  assert.equal(eventJson({ action: 'set', node }), '{"action":"set","node":{"key":"/a","value":"\\u003c\\u0026\\u003e","modifiedIndex":5,"createdIndex":4}}\n');
  assert.equal(eventJson({ action: 'get', node: { key: '/', dir: true, modifiedIndex: 0, createdIndex: 0 } }), '{"action":"get","node":{"dir":true}}\n');
  assert.equal(eventJson({ action: 'create', node }, true), '{"action":"create"}\n');
  assert.equal(errorBody(new V2Error(102, '', 7)), '{"errorCode":102,"message":"Not a file","index":7}\n');
  assert.equal(inOrderName(6), '00000000000000000006');
});

test('depthOf counts the components without splitting, for any string', () => {
  for (const p of ['/', '/a', '/a/b', '/a/b/c', '/ab/cde/f', '/a//b', '/a/', '//', 'a', 'a/b', '', '/ü/ß']) {
    assert.equal(depthOf(p), components(p).length, p);
  }
});

test('candidatesOfResponse: one candidate list per revision, in revision order, whatever the event order', () => {
  const k = new KeySchema('/v2');
  const ev = (type: Event_EventType, key: Buffer, rev: number, value = ''): Event => ({
    type, kv: { key, createRevision: BigInt(rev), modRevision: BigInt(rev), version: 1n, value: Buffer.from(value), lease: 0n }, prevKv: undefined,
  });
  const record = (action: string, key: string): string => JSON.stringify({ action, key, dir: false });
  const at5 = [ev(Event_EventType.PUT, k.fileKey('/a'), 5, 'x'), ev(Event_EventType.PUT, k.eventKey(), 5, record('update', '/a'))];
  const at3 = ev(Event_EventType.DELETE, k.fileKey('/b'), 3);
  const at7 = ev(Event_EventType.PUT, k.fileKey('/c'), 7, 'y');
  const want = [
    { rev: 3, cand: { action: 'expire', key: '/b', dir: false, rev: 3, inferred: true } },
    { rev: 5, cand: { action: 'update', key: '/a', dir: false, rev: 5, inferred: false } },
    { rev: 7, cand: { action: 'set', key: '/c', dir: false, rev: 7, inferred: false } },
  ];
  assert.deepEqual(candidatesOfResponse(k, [at3, ...at5, at7]), want, 'in order');
  assert.deepEqual(candidatesOfResponse(k, [at5[0]!, at7, at3, at5[1]!]), want, 'shuffled, a revision split');
  assert.deepEqual(candidatesOfResponse(k, []), []);
});
