// The npm `etcd3` client (v1.1.2) against our server: KV, revisions, watch, leases, locks, STM
// and comparator txns, as an application would use them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3, EtcdLeaseInvalidError, EtcdLockFailedError, type IKeyValue, type Lock } from 'etcd3';
import { startOurServer, type Server } from '../helpers/procs.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `ms` elapse; returns the last result. */
async function pollUntil(ms: number, check: () => Promise<boolean>, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** Resolves with `p` or rejects after `ms` (so a hung client call fails the test instead of hanging it). */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

let server: Server;
let client: Etcd3;

before(async () => {
  server = await startOurServer();
  client = new Etcd3({ hosts: server.clientUrl });
});
after(async () => {
  client?.close();
  await server?.stop();
});

describe('etcd3 client against our server', () => {
  test('put, get, getAll (prefix, count, keys), delete and the revisions they report', async () => {
    const p1 = await client.put('kv/a').value('1');
    const r1 = BigInt(p1.header.revision);
    assert.ok(r1 >= 2n, `first write revision ${r1}`);
    const p2 = await client.put('kv/b').value('2');
    assert.equal(BigInt(p2.header.revision), r1 + 1n);
    const p3 = await client.put('kv/a').value('3');
    assert.equal(BigInt(p3.header.revision), r1 + 2n);
    await client.put('kw/other').value('x');

    assert.equal(await client.get('kv/a').string(), '3');
    assert.equal(await client.get('kv/b').number(), 2);
    assert.equal(await client.get('kv/missing').string(), null);
    assert.equal(await client.get('kv/missing').exists(), false);

    const ra = await client.get('kv/a').exec();
    assert.equal(ra.kvs.length, 1);
    const kva = ra.kvs[0]!;
    assert.equal(kva.create_revision, String(r1));
    assert.equal(kva.mod_revision, String(r1 + 2n));
    assert.equal(kva.version, '2');
    assert.equal(kva.lease, '0');
    assert.equal(BigInt(ra.header.revision), r1 + 3n, 'Range header revision = current store revision');

    assert.deepEqual(await client.getAll().prefix('kv/').strings(), { 'kv/a': '3', 'kv/b': '2' });
    assert.deepEqual(await client.getAll().prefix('kv/').keys(), ['kv/a', 'kv/b']);
    assert.equal(await client.getAll().prefix('kv/').count(), 2);
    assert.equal(await client.getAll().prefix('k').count(), 3);
    assert.deepEqual(await client.getAll().prefix('kv/').sort('Key', 'Descend').keys(), ['kv/b', 'kv/a']);
    const limited = await client.getAll().prefix('k').limit(1).exec();
    assert.equal(limited.kvs.length, 1);
    assert.equal(limited.more, true);
    assert.equal(limited.count, '3');

    // A read at an older revision sees the older value.
    assert.equal(await client.get('kv/a').revision(String(r1)).string(), '1');

    const prev = await client.put('kv/b').value('22').getPrevious();
    assert.equal(prev.value.toString(), '2');

    const d1 = await client.delete().key('kv/a').exec();
    assert.equal(d1.deleted, '1');
    assert.equal(await client.get('kv/a').string(), null);
    const dPrefix = await client.delete().prefix('kv/').getPrevious();
    assert.deepEqual(dPrefix.map((kv) => [kv.key.toString(), kv.value.toString()]), [['kv/b', '22']]);
    assert.equal(await client.getAll().prefix('kv/').count(), 0);
    const dNone = await client.delete().key('kv/none').exec();
    assert.equal(dNone.deleted, '0');
    // A delete that removed nothing does not advance the revision.
    assert.equal(dNone.header.revision, (await client.get('kw/other').exec()).header.revision);
    await client.delete().all();
    assert.equal(await client.getAll().count(), 0);
  });

  test('watch on a prefix delivers put and delete events in order, with the previous kv', async () => {
    const watcher = await within(5000, client.watch().prefix('w/').withPreviousKV().create(), 'watch create');
    const seen: string[] = [];
    const events: Array<{ type: string; kv: IKeyValue; prev: IKeyValue | undefined }> = [];
    watcher.on('put', (kv, prev) => {
      events.push({ type: 'put', kv, prev });
      seen.push(`put ${kv.key.toString()}=${kv.value.toString()} prev=${prev?.value.toString() ?? '-'}`);
    });
    watcher.on('delete', (kv, prev) => {
      events.push({ type: 'delete', kv, prev });
      seen.push(`delete ${kv.key.toString()} prev=${prev?.value.toString() ?? '-'}`);
    });
    try {
      const a1 = await client.put('w/a').value('1');
      const a2 = await client.put('w/a').value('2');
      await client.put('outside').value('x'); // not under the prefix
      const b1 = await client.put('w/b').value('3');
      const d = await client.delete().key('w/a').exec();
      const want = ['put w/a=1 prev=-', 'put w/a=2 prev=1', 'put w/b=3 prev=-', 'delete w/a prev=2'];
      assert.ok(await pollUntil(5000, async () => seen.length >= want.length), `got only ${JSON.stringify(seen)}`);
      await sleep(200); // nothing else may arrive
      assert.deepEqual(seen, want);
      assert.deepEqual(events.map((e) => e.kv.mod_revision), [a1, a2, b1, d].map((r) => r.header.revision));
      assert.equal(events[0]!.kv.version, '1');
      assert.equal(events[1]!.kv.version, '2');
      assert.equal(events[1]!.prev?.mod_revision, a1.header.revision);
      // etcd3 keeps "the next revision to watch from": last response header revision + 1.
      assert.equal(String(watcher.lastRevision()), String(BigInt(d.header.revision) + 1n));
    } finally {
      await watcher.cancel();
    }
    // After cancel, no more events reach the watcher.
    await client.put('w/c').value('late');
    await sleep(200);
    assert.ok(!seen.some((s) => s.includes('w/c')), JSON.stringify(seen));
  });

  test('watch from a start revision replays history', async () => {
    const r1 = await client.put('h/x').value('1');
    await client.put('h/x').value('2');
    await client.delete().key('h/x');
    const seen: string[] = [];
    const watcher = await within(5000, client.watch().key('h/x').startRevision(r1.header.revision).create(), 'watch create');
    watcher.on('put', (kv) => seen.push(`put ${kv.value.toString()}`));
    watcher.on('delete', () => seen.push('delete'));
    try {
      assert.ok(await pollUntil(5000, async () => seen.length >= 3), JSON.stringify(seen));
      assert.deepEqual(seen, ['put 1', 'put 2', 'delete']);
    } finally {
      await watcher.cancel();
    }
  });

  test('lease: grant, put with lease, keepalive once, revoke deletes the key', async () => {
    const lease = client.lease(30, { autoKeepAlive: false });
    const id = await lease.grant();
    assert.match(id, /^[1-9]\d*$/, 'granted ID is a positive decimal');
    await lease.put('lease/k1').value('v1');
    await lease.put('lease/k2').value('v2');
    const kv = (await client.get('lease/k1').exec()).kvs[0];
    assert.equal(kv?.lease, id);

    const ka = await lease.keepaliveOnce();
    assert.equal(ka.ID, id);
    assert.equal(ka.TTL, '30');

    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.grantedTTL, '30');
    assert.ok(Number(ttl.TTL) > 25 && Number(ttl.TTL) <= 30, `remaining TTL ${ttl.TTL}`);
    assert.deepEqual(ttl.keys.map((k) => k.toString()).sort(), ['lease/k1', 'lease/k2']);
    const all = await client.leaseClient.leaseLeases({});
    assert.ok(all.leases.some((l) => l.ID === id), JSON.stringify(all.leases));

    await lease.revoke();
    assert.equal(await client.get('lease/k1').string(), null);
    assert.equal(await client.get('lease/k2').string(), null);
    const gone = await client.leaseClient.leaseTimeToLive({ ID: id });
    assert.equal(gone.TTL, '-1');
  });

  test('a lease with a 2 s TTL expires and its key is deleted', async () => {
    const lease = client.lease(2, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put('expiring').value('soon');
    assert.equal(await client.get('expiring').string(), 'soon');
    const deleted = await pollUntil(10_000, async () => (await client.get('expiring').string()) === null, 200);
    assert.ok(deleted, 'key attached to a 2 s lease still present after 10 s');
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id });
    assert.equal(ttl.TTL, '-1', 'expired lease is gone');
    // A keepalive of the expired lease reports it lost.
    await assert.rejects(lease.keepaliveOnce(), (e: unknown) => e instanceof EtcdLeaseInvalidError);
  });

  test('lock: acquire and release; a second acquire only succeeds after the first release', async () => {
    const first = await within(5000, client.lock('x').acquire(), 'first acquire');
    // etcd3 1.1.2's Lock does not block: acquiring a held lock fails at once with EtcdLockFailedError.
    await assert.rejects(client.lock('x').acquire(), (e: unknown) => e instanceof EtcdLockFailedError);

    // A waiter that retries until it gets the lock must not get it before the release.
    let released = false;
    let acquiredBeforeRelease = false;
    const waiter = (async (): Promise<Lock> => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          const l = await client.lock('x').acquire();
          if (!released) acquiredBeforeRelease = true;
          return l;
        } catch (e) {
          if (!(e instanceof EtcdLockFailedError) || Date.now() > deadline) throw e;
          await sleep(50);
        }
      }
    })();
    await sleep(500);
    assert.equal(acquiredBeforeRelease, false);
    released = true;
    await first.release();
    const second = await waiter;
    assert.equal(acquiredBeforeRelease, false, 'second acquire succeeded while the first holder had the lock');
    const holder = await client.getAll().prefix('x').keys();
    assert.deepEqual(holder, ['x']);
    await second.release();
    assert.equal(await client.get('x').exists(), false, 'release (lease revoke) removes the lock key');
  });

  test('STM: two concurrent read-modify-write transactions never lose an increment', async () => {
    await client.put('stm/counter').value('0');
    const perWorker = 15;
    let attempts = 0;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < perWorker; i++) {
        await client.stm({ retries: 200 }).transact(async (tx) => {
          attempts++;
          const n = (await tx.get('stm/counter').number()) ?? 0;
          await sleep(Math.random() * 5); // widen the race window
          await tx.put('stm/counter').value(n + 1);
        });
      }
    };
    await Promise.all([worker(), worker()]);
    assert.equal(await client.get('stm/counter').number(), 2 * perWorker);
    const kv = (await client.get('stm/counter').exec()).kvs[0]!;
    assert.equal(kv.version, String(2 * perWorker + 1), 'one successful put per increment');
    assert.ok(attempts >= 2 * perWorker);
  });

  test('txn with if/then/else takes the right branch', async () => {
    await client.put('txn/k').value('v1');
    const ok = await client.if('txn/k', 'Value', '==', 'v1')
      .then(client.put('txn/k').value('v2'), client.get('txn/k'))
      .else(client.put('txn/else').value('e'))
      .commit();
    assert.equal(ok.succeeded, true);
    assert.equal(ok.responses.length, 2);
    assert.equal(await client.get('txn/k').string(), 'v2');
    assert.equal(await client.get('txn/else').string(), null);
    // The range inside the txn sees the put before it.
    const inner = ok.responses[1]?.response_range?.kvs[0];
    assert.equal(inner?.value.toString(), 'v2');

    const no = await client.if('txn/k', 'Value', '==', 'v1')
      .then(client.put('txn/k').value('v3'))
      .else(client.put('txn/else').value('e'), client.delete().key('txn/k'))
      .commit();
    assert.equal(no.succeeded, false);
    assert.equal(await client.get('txn/else').string(), 'e');
    assert.equal(await client.get('txn/k').string(), null);

    // Comparisons on version / create revision / mod revision.
    const created = await client.put('txn/n').value('1');
    const byMod = await client.if('txn/n', 'Mod', '==', Number(created.header.revision))
      .and('txn/n', 'Version', '>', 0)
      .and('txn/absent', 'Create', '==', 0)
      .then(client.put('txn/n').value('2'))
      .commit();
    assert.equal(byMod.succeeded, true);
    assert.equal(BigInt(byMod.header.revision), BigInt(created.header.revision) + 1n);
    const stale = await client.if('txn/n', 'Mod', '==', Number(created.header.revision)).then(client.put('txn/n').value('3')).commit();
    assert.equal(stale.succeeded, false);
    assert.equal(await client.get('txn/n').string(), '2');
  });
});
