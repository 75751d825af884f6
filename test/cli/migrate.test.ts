// `etcd-gateway migrate` end to end: real etcd 3.4 with --enable-v2 holding a few thousand keys in
// nested directories (empty directories, TTL keys, a TTL directory, unicode, empty values, hidden
// nodes) is copied into our server by the command run as a child process; then both servers'
// recursive v2 trees are compared node by node (values, structure, TTLs within a few seconds).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { Pool, request } from 'undici';
import { freePort, hasEtcd, OUR_MAIN, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function migrate(args: string[]): Promise<Run> {
  return run(process.execPath, [OUR_MAIN, 'migrate', ...args]);
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function keyUrl(path: string): string {
  return '/v2/keys' + path.split('/').map(encodeURIComponent).join('/');
}

async function v2put(base: string, dispatcher: Pool, path: string, form: Record<string, string>): Promise<void> {
  const res = await request(base + keyUrl(path), {
    dispatcher, method: 'PUT', body: new URLSearchParams(form).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  const text = await res.body.text();
  assert.ok(res.statusCode === 200 || res.statusCode === 201, `PUT ${path}: ${res.statusCode} ${text}`);
}

interface Flat {
  dir: boolean;
  value?: string;
  ttl?: number;
}

async function tree(base: string, path = '/'): Promise<Map<string, Flat>> {
  const res = await request(`${base}${keyUrl(path === '/' ? '' : path)}?recursive=true&sorted=true`);
  const body = (await res.body.json()) as { node?: unknown };
  const out = new Map<string, Flat>();
  if (res.statusCode === 404) return out;
  assert.equal(res.statusCode, 200, JSON.stringify(body));
  const walk = (n: { key?: string; dir?: boolean; value?: string; ttl?: number; nodes?: unknown[] }): void => {
    if (n.key !== undefined) {
      const f: Flat = { dir: n.dir === true };
      if (n.value !== undefined) f.value = n.value;
      if (n.ttl !== undefined) f.ttl = n.ttl;
      out.set(n.key, f);
    }
    for (const c of n.nodes ?? []) walk(c as typeof n);
  };
  walk(body.node as Parameters<typeof walk>[0]);
  return out;
}

/** Asserts the two trees hold the same nodes; TTLs may differ by the time the copy took. */
function assertSameTree(want: Map<string, Flat>, got: Map<string, Flat>): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'same set of paths');
  for (const [path, w] of want) {
    const g = got.get(path)!;
    assert.equal(g.dir, w.dir, `${path}: dir`);
    assert.equal(g.value, w.value, `${path}: value`);
    assert.equal(g.ttl === undefined, w.ttl === undefined, `${path}: has a TTL in both or neither (${w.ttl} vs ${g.ttl})`);
    if (w.ttl !== undefined) assert.ok(Math.abs(g.ttl! - w.ttl) <= 5, `${path}: TTL ${g.ttl} vs ${w.ttl}`);
  }
}

const SUMMARY = /^migrate done: (\d+) keys, (\d+) dirs \((\d+) empty\), (\d+) with TTL; created (\d+), unchanged (\d+), merged dirs (\d+), overwritten (\d+), conflicts (\d+), expired (\d+), errors (\d+); [\d.]+ s$/m;

function summary(r: Run): number[] {
  const m = SUMMARY.exec(r.stdout);
  assert.ok(m, `no summary line in stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return m.slice(1).map(Number);
}

/**
 * A TCP proxy to 127.0.0.1:port that cuts each connection in the middle of an answer once it has
 * carried `cutAfterBytes` of answers: the server has applied that request, the client sees a reset.
 */
async function flakyProxy(port: number, cutAfterBytes: number): Promise<{ url: string; cuts(): number; close(): Promise<void> }> {
  let cuts = 0;
  const sockets = new Set<Socket>();
  const srv = createServer((client) => {
    const up = connect(port, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(up);
    let carried = 0;
    up.on('data', (chunk: Buffer) => {
      carried += chunk.length;
      if (carried > cutAfterBytes) {
        cuts++;
        client.resetAndDestroy();
        up.destroy();
        return;
      }
      client.write(chunk);
    });
    up.on('end', () => client.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    cuts: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

const UNICODE = ['héllo wörld', 'ключ ✓ 🚀', '', 'a=b&c=d+e%20f', 'line1\nline2\ttab', ' leading and trailing ', '漢字かな'];

async function fill(etcd: Server): Promise<{ keys: number; dirs: number; emptyDirs: number; ttl: number }> {
  const pool = new Pool(etcd.clientUrl, { connections: 32 });
  const writes: Array<[string, Record<string, string>]> = [];
  let keys = 0;
  let dirs = 0;
  let emptyDirs = 0;
  let ttl = 0;
  // 8 x 8 x 40 = 2560 keys in 8 + 64 nested directories
  for (let a = 0; a < 8; a++) {
    dirs++;
    for (let b = 0; b < 8; b++) {
      dirs++;
      for (let k = 0; k < 40; k++) {
        writes.push([`/app${a}/svc${b}/key${k}`, { value: `v-${a}-${b}-${k}-${UNICODE[k % UNICODE.length]}` }]);
        keys++;
      }
    }
  }
  // empty directories at several depths (their ancestors are created implicitly)
  for (const d of ['/empty', '/app3/nothing-here', '/deep/a/b/c/d']) writes.push([d, { dir: 'true' }]);
  emptyDirs += 3;
  dirs += 3 + 4; // /deep, /deep/a, /deep/a/b, /deep/a/b/c
  // unicode key names, empty values
  writes.push(['/uni/ключ', { value: 'значение' }], ['/uni/a b', { value: '' }], ['/uni/emoji🚀', { value: '🚀' }], ['/uni/100%', { value: 'pct' }]);
  dirs++;
  keys += 4;
  // keys with a TTL
  for (let i = 0; i < 10; i++) writes.push([`/ttl/k${i}`, { value: `t${i}`, ttl: String(300 + i) }]);
  dirs++;
  keys += 10;
  ttl += 10;
  await Promise.all(writes.map(([p, f]) => v2put(etcd.clientUrl, pool, p, f)));
  // a directory with a TTL and children (created before them, so the TTL is its own)
  await v2put(etcd.clientUrl, pool, '/ttldir', { dir: 'true', ttl: '600' });
  await v2put(etcd.clientUrl, pool, '/ttldir/x', { value: 'x' });
  await v2put(etcd.clientUrl, pool, '/ttldir/sub/y', { value: 'y', ttl: '400' });
  dirs += 2;
  keys += 2;
  ttl += 2;
  // hidden nodes: recursive GETs do not list them
  await v2put(etcd.clientUrl, pool, '/_hidden/secret', { value: 's3cret' });
  await v2put(etcd.clientUrl, pool, '/app0/_lock', { value: 'held' });
  await pool.close();
  return { keys, dirs, emptyDirs, ttl };
}

test('migrate copies every key, directory and TTL of a live etcd v2 store', { timeout: 300_000 }, async (t) => {
  if (!hasEtcd()) return t.skip('etcd 3.4 is not installed');
  const etcd = await startRealEtcd({ enableV2: true });
  const ours = await startOurServer();
  try {
    const n = await fill(etcd);
    const total = n.keys + n.dirs;
    const ourPool = new Pool(ours.clientUrl, { connections: 2 });
    // One key the target already holds with another value: a conflict, not an overwrite.
    await v2put(ours.clientUrl, ourPool, '/app1/svc1/key1', { value: 'already here' });
    await ourPool.close();
    const args = ['--from', etcd.clientUrl, '--to', ours.clientUrl];

    const dry = await migrate([...args, '--dry-run']);
    assert.equal(dry.code, 1, `dry run reports the conflict: ${dry.stderr}`);
    assert.match(dry.stdout, new RegExp(`^migrate dry run, would be: ${n.keys} keys, ${n.dirs} dirs \\(${n.emptyDirs} empty\\), ${n.ttl} with TTL; created ${total - 3}, unchanged 0, merged dirs 2, overwritten 0, conflicts 1,`, 'm'));
    assert.match(dry.stderr, /^conflict: \/app1\/svc1\/key1: the target holds something else there$/m);
    assert.equal((await tree(ours.clientUrl)).size, 3, 'a dry run writes nothing');

    const first = await migrate(args);
    t.diagnostic(first.stdout.trim());
    assert.equal(first.code, 1, 'a conflict makes the exit status 1');
    // keys, dirs, empty, ttl, created, unchanged, merged, overwritten, conflicts, expired, errors
    assert.deepEqual(summary(first), [n.keys, n.dirs, n.emptyDirs, n.ttl, total - 3, 0, 2, 0, 1, 0, 0], first.stdout);
    assert.match(first.stderr, /^conflict: \/app1\/svc1\/key1: a key with another value is there/m);
    assert.doesNotMatch(first.stderr, /\r/, 'no progress bar redraws when stderr is not a terminal');
    assert.equal((await tree(ours.clientUrl, '/app1/svc1/key1')).get('/app1/svc1/key1')?.value, 'already here', 'not overwritten');
    assert.equal((await tree(ours.clientUrl, '/_hidden')).size, 0, 'hidden nodes are not listed, so not copied');

    // A re-run with --overwrite replaces the conflicting key and finds everything else in place;
    // --include copies a hidden subtree a recursive GET does not list.
    const second = await migrate([...args, '--overwrite', '--include', '/_hidden', '--include', '/app0/_lock']);
    assert.equal(second.code, 0, second.stderr);
    // /_hidden and /_hidden/secret and /app0/_lock are new; all dirs merge; all keys but one unchanged
    assert.deepEqual(summary(second), [n.keys + 2, n.dirs + 1, n.emptyDirs, n.ttl, 3, n.keys - 1, n.dirs, 1, 0, 0, 0], second.stdout);

    assertSameTree(await tree(etcd.clientUrl), await tree(ours.clientUrl));

    // On a terminal the progress is a bar redrawn in place (util-linux `script` gives us a pty).
    if (existsSync('/usr/bin/script')) {
      const cmd = [process.execPath, OUR_MAIN, 'migrate', ...args].join(' ');
      const tty = await run('/usr/bin/script', ['-q', '-e', '-c', cmd, '/dev/null']);
      assert.equal(tty.code, 0, tty.stdout);
      assert.match(tty.stdout, new RegExp(`\\r\\[#{30}\\] ${total}/${total} 100% `), 'a full bar at the end');
      assert.match(tty.stdout, new RegExp(`unchanged ${n.keys},`));
    }
    assertSameTree(await tree(etcd.clientUrl, '/_hidden'), await tree(ours.clientUrl, '/_hidden'));
    assertSameTree(await tree(etcd.clientUrl, '/app0/_lock'), await tree(ours.clientUrl, '/app0/_lock'));
    // --prefix copies one subtree (the directory itself included); a dry run finds it all in place.
    const sub = await migrate([...args, '--prefix', '/app1', '--dry-run']);
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /^migrate dry run, would be: 320 keys, 9 dirs \(0 empty\), 0 with TTL; created 0, unchanged 320, merged dirs 9, overwritten 0, conflicts 0,/m);

    const ttlDir = (await tree(ours.clientUrl, '/ttldir')).get('/ttldir')!;
    assert.ok(ttlDir.dir && ttlDir.ttl !== undefined && ttlDir.ttl > 500, `the TTL directory kept its TTL: ${JSON.stringify(ttlDir)}`);
  } finally {
    await Promise.all([etcd.stop(), ours.stop()]);
  }
});

test('migrate retries writes whose connection was reset and still copies everything once', { timeout: 300_000 }, async (t) => {
  if (!hasEtcd()) return t.skip('etcd 3.4 is not installed');
  const etcd = await startRealEtcd({ enableV2: true });
  const ours = await startOurServer();
  const proxy = await flakyProxy(Number(new URL(ours.clientUrl).port), 20_000);
  try {
    const n = await fill(etcd);
    const r = await migrate(['--from', etcd.clientUrl, '--to', proxy.url]);
    t.diagnostic(`${proxy.cuts()} connections cut; ${r.stdout.trim()}`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(proxy.cuts() > 0, 'the proxy did cut connections');
    const [keys, dirs, , , created, unchanged, merged, overwritten, conflicts, expired, errors] = summary(r);
    assert.deepEqual([keys, dirs, overwritten, conflicts, expired, errors], [n.keys, n.dirs, 0, 0, 0, 0]);
    // A create that was applied but whose answer was lost finds its own value on the retry.
    assert.equal(created! + unchanged! + merged!, n.keys + n.dirs);
    assertSameTree(await tree(etcd.clientUrl), await tree(ours.clientUrl));
  } finally {
    await proxy.close();
    await Promise.all([etcd.stop(), ours.stop()]);
  }
});

test('migrate refuses bad input with a clear message and a non-zero status', { timeout: 60_000 }, async (t) => {
  const ours = await startOurServer();
  try {
    const badUrl = await migrate(['--from', 'not a url', '--to', ours.clientUrl]);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /invalid value "not a url" for --from: not a URL/);

    const withPath = await migrate(['--from', ours.clientUrl, '--to', `${ours.clientUrl}/v2/keys`]);
    assert.equal(withPath.code, 2);
    assert.match(withPath.stderr, /--to: give the client URL only/);

    const missing = await migrate(['--from', ours.clientUrl]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--from and --to are required/);

    const unknown = await migrate(['--from', ours.clientUrl, '--to', ours.clientUrl, '--bogus', 'x']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown flag --bogus/);

    const deadPort = await freePort();
    const unreachable = await migrate(['--from', `http://127.0.0.1:${deadPort}`, '--to', ours.clientUrl]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, new RegExp(`cannot read the source http://127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED`));
    assert.doesNotMatch(unreachable.stdout, /migrate done/);

    const noTarget = await migrate(['--from', ours.clientUrl, '--to', `http://127.0.0.1:${deadPort}`]);
    assert.equal(noTarget.code, 1);
    assert.match(noTarget.stderr, new RegExp(`cannot read the target http://127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED`));

    if (!hasEtcd()) return t.skip('etcd 3.4 is not installed (the v2-disabled case needs it)');
    const noV2 = await startRealEtcd({ enableV2: false });
    try {
      const r = await migrate(['--from', noV2.clientUrl, '--to', ours.clientUrl]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /does not serve the v2 keys API \(HTTP 404; start etcd 3\.4 with --enable-v2\)/);
    } finally {
      await noV2.stop();
    }
  } finally {
    await ours.stop();
  }
});
