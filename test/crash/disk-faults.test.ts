// Disk faults: a WAL whose fdatasync fails (EIO) or whose write finds the disk full (ENOSPC),
// injected through the WAL's file layer (src/core/wal/wal.ts walFileOps), and a real full disk (a
// small tmpfs; skipped where mounting is not permitted). The server must stop accepting writes
// with a clear error on every protocol, fail /health with the reason, log it, stay up, and lose
// no acknowledged write: a restart on the same data (the disk fixed) has every one of them.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { walFileOps, type WalFileOps } from '../../src/core/wal/wal.js';
import { KVClient, PutRequest, RangeRequest, type PutResponse, type RangeResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { startGateway } from '../gateway/harness.js';
import { makeTempDir, removeTempDir, startOurServer } from '../helpers/procs.js';

const b = (s: string) => Buffer.from(s);

function errnoError(code: 'EIO' | 'ENOSPC', syscall: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: ${code === 'EIO' ? 'i/o error' : 'no space left on device'}, ${syscall}`);
  e.code = code;
  e.syscall = syscall;
  return e;
}

/** node:fs, except the chosen call fails once `armed` is set. */
function faultyOps(kind: 'fsync-eio' | 'write-enospc'): WalFileOps & { armed: boolean } {
  const real = walFileOps.current;
  const ops = {
    armed: false,
    writeSync: (fd: number, buf: Buffer, off: number, len: number, pos: number): number => {
      if (ops.armed && kind === 'write-enospc') throw errnoError('ENOSPC', 'write');
      return real.writeSync(fd, buf, off, len, pos);
    },
    fdatasync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
      if (ops.armed && kind === 'fsync-eio') return void setImmediate(() => cb(errnoError('EIO', 'fdatasync')));
      real.fdatasync(fd, cb);
    },
    fdatasyncSync: (fd: number): void => {
      if (ops.armed && kind === 'fsync-eio') throw errnoError('EIO', 'fdatasync');
      real.fdatasyncSync(fd);
    },
  };
  return ops;
}

function grpcPut(kv: KVClient, key: string, value: string): Promise<PutResponse> {
  return new Promise((res, rej) => kv.put(PutRequest.fromPartial({ key: b(key), value: b(value) }), new grpc.Metadata(),
    { deadline: Date.now() + 10_000 }, (e, r) => (e ? rej(e) : res(r))));
}

function grpcRange(kv: KVClient, key: string, end: string): Promise<RangeResponse> {
  return new Promise((res, rej) => kv.range(RangeRequest.fromPartial({ key: b(key), rangeEnd: b(end) }), new grpc.Metadata(),
    { deadline: Date.now() + 10_000 }, (e, r) => (e ? rej(e) : res(r))));
}

async function http(url: string, method: string, body?: string, contentType = 'application/json'): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { method, ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }), signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.text() };
}

for (const kind of ['fsync-eio', 'write-enospc'] as const) {
  const code = kind === 'fsync-eio' ? 'EIO' : 'ENOSPC';
  test(`WAL ${kind}: writes refused with etcd's storage error on gRPC, gateway and v2, /health fails, logged, nothing acknowledged lost`, { timeout: 60_000 }, async () => {
    const dir = await makeTempDir('disk-fault-');
    const real = walFileOps.current;
    const errors: string[] = [];
    const ops = faultyOps(kind);
    walFileOps.current = ops;
    try {
      const g = await startGateway([], dir, { upstream: false, logger: pino({ level: 'error' }, { write: (l: string) => void errors.push(l) }) });
      const kv = new KVClient(g.url.slice('http://'.length), grpc.credentials.createInsecure());
      const acked = new Map<string, string>();
      try {
        for (let i = 0; i < 20; i++) {
          await grpcPut(kv, `acked/${i}`, `v${i}`);
          acked.set(`acked/${i}`, `v${i}`);
        }
        ops.armed = true;
        // Writes in flight when the disk fails are refused (not left hanging), and so is every later one.
        const inFlight = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => grpcPut(kv, `lost/${i}`, 'x')));
        for (const r of inFlight) {
          assert.equal(r.status, 'rejected');
          const e = (r as PromiseRejectedResult).reason as grpc.ServiceError;
          assert.equal(e.code, grpc.status.UNAVAILABLE, e.message);
          assert.match(e.details, new RegExp(`^etcdserver: storage failed: .*${code}`));
        }
        await assert.rejects(grpcPut(kv, 'later', 'x'), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE && e.details.startsWith('etcdserver: storage failed: '));
        const gw = await http(`${g.url}/v3/kv/put`, 'POST', JSON.stringify({ key: b('gw').toString('base64'), value: 'eA==' }));
        assert.equal(gw.status, 503, gw.body);
        const gwErr = JSON.parse(gw.body) as { error: string; message: string; code: number };
        assert.equal(gwErr.code, 14);
        assert.match(gwErr.message, new RegExp(`^etcdserver: storage failed: .*${code}`));
        const v2 = await http(`${g.url}/v2/keys/v2key`, 'PUT', 'value=x', 'application/x-www-form-urlencoded');
        assert.ok(v2.status >= 500, `v2 write answered ${v2.status} ${v2.body}`);
        const v2Err = JSON.parse(v2.body) as { errorCode: number; cause?: string };
        assert.equal(v2Err.errorCode, 300, v2.body);
        assert.match(v2Err.cause ?? '', /storage failed/);
        // /health fails with the reason; reads still answer (what was committed).
        const h = await http(`${g.url}/health`, 'GET');
        assert.equal(h.status, 503);
        assert.match(JSON.parse(h.body).reason as string, new RegExp(`storage failed: .*${code}`));
        assert.equal((await grpcRange(kv, 'acked/', 'acked0')).count, 20n);
        // One log line, at error level, with the cause.
        assert.equal(errors.filter((l) => l.includes('storage failed')).length, 1, errors.join('\n'));
        assert.match(errors.find((l) => l.includes('storage failed'))!, new RegExp(code));
      } finally {
        kv.close();
        ops.armed = false;
        await g.close();
      }
      // The disk is fixed: a restart on the same data dir has every acknowledged write and takes new ones.
      walFileOps.current = real;
      const g2 = await startGateway([], dir, { upstream: false });
      const kv2 = new KVClient(g2.url.slice('http://'.length), grpc.credentials.createInsecure());
      try {
        const r = await grpcRange(kv2, 'acked/', 'acked0');
        assert.deepEqual(new Map(r.kvs.map((x) => [x.key.toString(), x.value.toString()])), acked);
        await grpcPut(kv2, 'after', 'fixed');
        assert.equal((await http(`${g2.url}/health`, 'GET')).status, 200);
      } finally {
        kv2.close();
        await g2.close();
      }
    } finally {
      walFileOps.current = real;
      await removeTempDir(dir);
    }
  });
}

/** Mounts a tmpfs of `mb` MiB at a fresh dir; undefined where mounting is not permitted. */
function mountTmpfs(mb: number): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = join('/tmp', `etcd-full-disk-${process.pid}-${Date.now()}`);
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

test('a real full disk (3 MiB tmpfs): the server stays up, refuses writes, fails /health; every acknowledged write survives', { timeout: 90_000 }, async (t) => {
  const mnt = mountTmpfs(3);
  if (mnt === undefined) {
    t.skip('mounting a tmpfs is not permitted here (needs root and CAP_SYS_ADMIN)');
    return;
  }
  const copy = await makeTempDir('full-disk-copy-');
  try {
    const server = await startOurServer({ dataDir: join(mnt, 'data') });
    const acked = new Set<string>();
    let refusal: { status: number; body: string } | undefined;
    try {
      const value = Buffer.alloc(100 * 1024, 0x61).toString('base64');
      for (let i = 0; i < 200 && refusal === undefined; i++) {
        const r = await http(`${server.clientUrl}/v3/kv/put`, 'POST', JSON.stringify({ key: b(`big/${String(i).padStart(3, '0')}`).toString('base64'), value }));
        if (r.status === 200) acked.add(`big/${String(i).padStart(3, '0')}`);
        else refusal = r;
      }
      assert.ok(refusal !== undefined, 'the disk never filled up');
      assert.equal(refusal.status, 503, refusal.body);
      assert.match((JSON.parse(refusal.body) as { message: string }).message, /^etcdserver: storage failed: /);
      // Still up: later writes refused the same way, /health false with the reason.
      const again = await http(`${server.clientUrl}/v3/kv/put`, 'POST', JSON.stringify({ key: 'eA==', value: 'eA==' }));
      assert.equal(again.status, 503);
      const h = await http(`${server.clientUrl}/health`, 'GET');
      assert.equal(h.status, 503);
      assert.match(h.body, /storage failed/);
      t.diagnostic(`${acked.size} writes acknowledged before the disk filled; refusal: ${refusal.body.slice(0, 200)}`);
    } finally {
      await server.stop();
    }
    // Room again (a copy of the data dir on a disk with space): every acknowledged write is there.
    cpSync(join(mnt, 'data'), join(copy, 'data'), { recursive: true });
    const s2 = await startOurServer({ dataDir: join(copy, 'data') });
    try {
      const kv = new KVClient(s2.endpoint, grpc.credentials.createInsecure());
      try {
        const r = await grpcRange(kv, 'big/', 'big0');
        const have = new Set(r.kvs.map((x) => x.key.toString()));
        for (const k of acked) assert.ok(have.has(k), `acknowledged ${k} lost`);
      } finally {
        kv.close();
      }
    } finally {
      await s2.stop();
    }
  } finally {
    await removeTempDir(copy);
    try {
      execFileSync('umount', [mnt], { stdio: 'ignore' });
    } finally {
      rmSync(mnt, { recursive: true, force: true });
    }
  }
});
