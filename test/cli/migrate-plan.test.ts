// The pure half of `migrate`: argument parsing, flattening a v2 answer, write order, outcomes,
// TTL arithmetic, form bodies and texts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cleanV2Path, emptyTally, flattenV2, keysUrlPath, outcomeFor, parseMigrateArgs, planMigration, predictOutcomes,
  progressText, remainingTtlS, summaryLine, writeForm, type SourceNode,
} from '../../src/cli/migrate-plan.js';
import { FlagError } from '../../src/config/index.js';

test('arguments: defaults, values, and clear errors', () => {
  const o = parseMigrateArgs(['--from', 'http://a:2379', '--to=http://b:2379/', '--prefix', '//x/y/', '--include', '/x/y/_h', '--dry-run', '--concurrency', '8']);
  assert.equal(o.from.origin, 'http://a:2379');
  assert.equal(o.to.origin, 'http://b:2379');
  assert.equal(o.prefix, '/x/y');
  assert.deepEqual(o.include, ['/x/y/_h']);
  assert.equal(o.dryRun, true);
  assert.equal(o.overwrite, false);
  assert.equal(o.concurrency, 8);
  assert.equal(parseMigrateArgs(['--from', 'http://a:1', '--to', 'http://b:1']).concurrency, 32);
  const bad: Array<[string[], RegExp]> = [
    [['--from', 'http://a:1'], /--from and --to are required/],
    [['--from', 'ftp://a:1', '--to', 'http://b:1'], /scheme must be http or https/],
    [['--from', 'http://a:1/v2', '--to', 'http://b:1'], /without a path or query/],
    [['--from', 'http://a:1', '--to', 'http://b:1', '--concurrency', '0'], /want 1\.\.256/],
    [['--from', 'http://a:1', '--to', 'http://b:1', '--prefix', '/a', '--include', '/b/_x'], /outside --prefix/],
    [['--from', 'http://a:1', '--to', 'http://b:1', 'extra'], /unexpected argument "extra"/],
    [['--from'], /needs an argument: --from/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseMigrateArgs(argv), (e: unknown) => e instanceof FlagError && re.test(e.message), argv.join(' '));
  assert.equal(cleanV2Path('a//b/./c/'), '/a/b/c');
  assert.equal(cleanV2Path('/'), '/');
});

test('flattening a recursive GET answer keeps tree order, values, TTLs; the root is not a node', () => {
  const answer = {
    dir: true,
    nodes: [
      { key: '/a', dir: true, nodes: [{ key: '/a/k', value: '', modifiedIndex: 5 }, { key: '/a/e', dir: true }] },
      { key: '/t', value: 'v', ttl: 30, expiration: '2026-01-01T00:00:00Z' },
      { key: '/due', value: 'v', expiration: '2026-01-01T00:00:00Z' },
    ],
  };
  assert.deepEqual(flattenV2(answer), [
    { path: '/a', dir: true, value: '' },
    { path: '/a/k', dir: false, value: '' },
    { path: '/a/e', dir: true, value: '' },
    { path: '/t', dir: false, value: 'v', ttlS: 30 },
    { path: '/due', dir: false, value: 'v', ttlS: 0 },
  ]);
  assert.throws(() => flattenV2({ nodes: [{ key: '/x', value: 3 }] }), /"value" of \/x is not a string/);
  assert.throws(() => flattenV2({ nodes: 'no' }), /"nodes" is not an array/);
});

test('the plan writes directories level by level before keys, and counts', () => {
  const n = (path: string, dir = false, ttlS?: number): SourceNode => (ttlS === undefined ? { path, dir, value: dir ? '' : 'v' } : { path, dir, value: dir ? '' : 'v', ttlS });
  const plan = planMigration([
    [n('/a', true), n('/a/b', true, 60), n('/a/b/c', true), n('/a/b/k'), n('/z', true), n('/k', false, 5)],
    [n('/a/b/k'), n('/_h', true), n('/_h/x')],
  ]);
  assert.deepEqual(plan.dirLevels.map((l) => l.map((x) => x.path)), [['/a', '/z', '/_h'], ['/a/b'], ['/a/b/c']]);
  assert.deepEqual(plan.keys.map((x) => x.path), ['/a/b/k', '/k', '/_h/x']);
  assert.deepEqual(plan.counts, { keys: 3, dirs: 5, emptyDirs: 2, ttlNodes: 2 });
  assert.equal(plan.total, 8);
});

test('outcomes when the target already holds something', () => {
  const key: SourceNode = { path: '/k', dir: false, value: 'v' };
  const dir: SourceNode = { path: '/d', dir: true, value: '' };
  const cases: Array<[SourceNode, Parameters<typeof outcomeFor>[1], boolean, string]> = [
    [key, undefined, false, 'create'],
    [key, { dir: false, value: 'v' }, false, 'unchanged'],
    [key, { dir: false, value: 'w' }, false, 'conflict'],
    [key, { dir: false, value: 'w' }, true, 'overwrite'],
    [key, { dir: true }, true, 'conflict'],
    [dir, { dir: true }, false, 'merge'],
    [dir, { dir: false, value: '' }, true, 'conflict'],
  ];
  for (const [src, target, ow, want] of cases) assert.equal(outcomeFor(src, target, ow), want, `${src.path} ${JSON.stringify(target)} ${ow}`);
  // dry run: a key in the target where the source has a directory blocks the subtree
  const plan = planMigration([[{ path: '/d', dir: true, value: '' }, { path: '/d/k', dir: false, value: 'v' }, { path: '/n', dir: false, value: 'v' }]]);
  const p = predictOutcomes(plan, [{ path: '/d', dir: false, value: 'x' }], false);
  assert.deepEqual([...p], [['/d', 'conflict'], ['/d/k', 'conflict'], ['/n', 'create']]);
});

test('remaining TTL counts from the read, rounded up like etcd; <= 0 is expired', () => {
  assert.equal(remainingTtlS(30, 0), 30);
  assert.equal(remainingTtlS(30, 1), 30);
  assert.equal(remainingTtlS(30, 1000), 29);
  assert.equal(remainingTtlS(30, 29_999), 1);
  assert.equal(remainingTtlS(30, 30_000), 0);
  assert.equal(remainingTtlS(0, 0), 0);
});

test('request paths and form bodies', () => {
  assert.equal(keysUrlPath('/a b/ключ/100%/q?#'), '/v2/keys/a%20b/%D0%BA%D0%BB%D1%8E%D1%87/100%25/q%3F%23');
  const k: SourceNode = { path: '/k', dir: false, value: 'a=b&c ü' };
  assert.equal(writeForm(k, 'create', undefined), 'value=a%3Db%26c+%C3%BC&prevExist=false');
  assert.equal(writeForm(k, 'create', 7), 'value=a%3Db%26c+%C3%BC&prevExist=false&ttl=7');
  assert.equal(writeForm(k, 'overwrite', undefined), 'value=a%3Db%26c+%C3%BC&prevExist=true&ttl=');
  assert.equal(writeForm({ path: '/d', dir: true, value: '' }, 'dirTtl', 9), 'dir=true&prevExist=true&ttl=9');
  assert.equal(new URLSearchParams(writeForm({ path: '/e', dir: false, value: '' }, 'create', undefined)).get('value'), '');
});

test('progress and summary texts', () => {
  assert.equal(progressText(5, 20, 1.25, false), 'migrate: 5/20 nodes (25%), 1.3 s');
  assert.equal(progressText(10, 20, 2, true), `[${'#'.repeat(15)}${'.'.repeat(15)}] 10/20 50% 2.0 s`);
  assert.equal(progressText(0, 0, 0, true), `[${'#'.repeat(30)}] 0/0 100% 0.0 s`);
  const plan = planMigration([[{ path: '/d', dir: true, value: '' }, { path: '/k', dir: false, value: '', ttlS: 3 }]]);
  const t = { ...emptyTally(), created: 1, conflicts: 1 };
  assert.equal(summaryLine(plan, t, 1.04, false), 'migrate done: 1 keys, 1 dirs (1 empty), 1 with TTL; created 1, unchanged 0, merged dirs 0, overwritten 0, conflicts 1, expired 0, errors 0; 1.0 s');
  assert.match(summaryLine(plan, t, 0, true), /^migrate dry run, would be: /);
});
