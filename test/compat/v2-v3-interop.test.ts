// The interop promise: v2 and v3 clients share one keyspace. A v2 write is read by v3 etcdctl
// and seen by a v3 watch; a v3 write under the v2 schema is read and watched through v2.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { etcdctl, hasEtcd, startOurServer } from '../helpers/procs.js';

test('v2 writes are v3 keys and v3 writes are v2 nodes', async (t) => {
  if (!hasEtcd()) return t.skip('etcdctl is not installed');
  const s = await startOurServer();
  try {
    const v2 = (path: string, init?: RequestInit) => fetch(`${s.clientUrl}/v2/keys${path}`, init);
    const form = (body: string): RequestInit => ({ method: 'PUT', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });

    // A v3 watch on the v2 prefix, started before the v2 writes.
    let watched = '';
    const watch = etcdctl(s.endpoint, ['watch', '--prefix', '/v2/002/app/'], { timeoutMs: 4000, onStdout: (d: string) => { watched += d; } });
    await new Promise((r) => setTimeout(r, 500));

    assert.equal((await v2('/app/color', form('value=blue'))).status, 201);
    assert.equal((await v2('/app/color', form('value=green'))).status, 200);
    const got = await etcdctl(s.endpoint, ['get', '/v2/002/app/color', '--print-value-only']);
    assert.equal(got.stdout.trim(), 'green');
    const dir = await etcdctl(s.endpoint, ['get', '/v2/001/app/', '--keys-only']);
    assert.match(dir.stdout, /\/v2\/001\/app\//, 'the v2 directory is a v3 key too');

    // v3 -> v2: a put under the schema is a v2 node, and a v2 long poll sees it.
    const poll = v2('/app/size?wait=true', { signal: AbortSignal.timeout(5000) });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await etcdctl(s.endpoint, ['put', '/v2/002/app/size', 'XL'])).code, 0);
    const event = await (await poll).json() as { action: string; node: { key: string; value: string } };
    assert.equal(event.node.key, '/app/size');
    assert.equal(event.node.value, 'XL');
    const read = await (await v2('/app/size')).json() as { node: { value: string } };
    assert.equal(read.node.value, 'XL');
    const list = await (await v2('/app?sorted=true')).json() as { node: { nodes: { key: string }[] } };
    assert.deepEqual(list.node.nodes.map((n) => n.key), ['/app/color', '/app/size']);

    await watch;
    assert.match(watched, /PUT\n\/v2\/002\/app\/color\nblue\n/);
    assert.match(watched, /PUT\n\/v2\/002\/app\/color\ngreen\n/);
  } finally {
    await s.stop();
  }
});
