// Lease IDs beyond 2^53 (and at the int64 extremes) must round-trip exactly: through LeaseGrant,
// a Put's lease, Range, TimeToLive, Leases, KeepAlive and etcdctl's hex/decimal printing.
// The same scenario runs against real etcd 3.4 and must give the same transcript.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  KVClient, LeaseClient, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseRevokeRequest,
  LeaseTimeToLiveRequest, PutRequest, RangeRequest,
  type LeaseGrantResponse, type LeaseKeepAliveResponse, type LeaseLeasesResponse, type LeaseTimeToLiveResponse,
  type PutResponse, type RangeResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import { etcdctl, hasEtcd, makeTempDir, removeTempDir, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
function call<Req, Res>(fn: (req: Req, cb: Callback<Res>) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

const ABOVE_2_53 = 9007199254740993n; // 2^53 + 1: not representable as a double
const INT64_MAX = 9223372036854775807n; // 2^63 - 1
const NEGATIVE = -2n; // etcd accepts any non-zero ID, negative ones included

/** int64 as etcdctl prints lease IDs: Go's %016x (zero-padded to 16 characters, sign included). */
function goHex(id: bigint): string {
  return id < 0n ? `-${(-id).toString(16).padStart(15, '0')}` : id.toString(16).padStart(16, '0');
}

function keepAliveOnce(lease: LeaseClient, id: bigint): Promise<LeaseKeepAliveResponse> {
  return new Promise((resolve, reject) => {
    const s = lease.leaseKeepAlive();
    s.once('data', (r: LeaseKeepAliveResponse) => {
      resolve(r);
      s.end();
    });
    s.once('error', reject);
    s.write(LeaseKeepAliveRequest.fromPartial({ ID: id }));
  });
}

/** etcdctl prints the same IDs: hex in `lease list` / timetolive / keep-alive, decimal in JSON. */
async function etcdctlChecks(srv: Server, kv: KVClient, ids: readonly bigint[]): Promise<string[]> {
  const out: string[] = [];
  const list = await etcdctl(srv.endpoint, ['lease', 'list']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines[0], `found ${ids.length} leases`);
  assert.deepEqual(lines.slice(1).sort(), ids.map(goHex).sort());
  out.push(`etcdctl lease list: ${lines.slice(1).sort().join(' ')}`);

  for (const id of ids) {
    const key = `lease-id/${id}`;
    const get = await etcdctl(srv.endpoint, ['get', key, '-w', 'json']);
    assert.equal(get.code, 0, get.stderr);
    const m = /"lease":(-?\d+)/.exec(get.stdout);
    assert.ok(m, get.stdout);
    assert.equal(BigInt(m[1]!), id, `etcdctl get -w json lease for ${id}: ${get.stdout}`);
    out.push(`etcdctl get json lease ${m[1]}`);

    const ttl = await etcdctl(srv.endpoint, ['lease', 'timetolive', '--keys', '--', goHex(id)]);
    assert.equal(ttl.code, 0, ttl.stderr);
    const tm = /^lease (\S+) granted with TTL\((\d+)s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)$/.exec(ttl.stdout.trim());
    assert.ok(tm, ttl.stdout);
    assert.equal(tm[1], goHex(id));
    assert.equal(tm[4], key);
    out.push(`etcdctl timetolive ${tm[1]} granted ${tm[2]} keys ${tm[4]}`);

    const ttlJson = await etcdctl(srv.endpoint, ['lease', 'timetolive', '-w', 'json', '--', goHex(id)]);
    const jm = /"id":(-?\d+)/.exec(ttlJson.stdout);
    assert.ok(jm, ttlJson.stdout);
    assert.equal(BigInt(jm[1]!), id);

    const ka = await etcdctl(srv.endpoint, ['lease', 'keep-alive', '--once', '--', goHex(id)]);
    assert.equal(ka.code, 0, ka.stderr);
    assert.equal(ka.stdout.trim(), `lease ${goHex(id)} keepalived with TTL(600)`);
    out.push(`etcdctl ${ka.stdout.trim()}`);

    // etcdctl put --lease=<hex> attaches the same ID.
    const put = await etcdctl(srv.endpoint, ['put', `${key}/ctl`, 'x', `--lease=${goHex(id)}`]);
    assert.equal(put.code, 0, put.stderr);
    const r: RangeResponse = await call(kv.range.bind(kv), RangeRequest.fromPartial({ key: Buffer.from(`${key}/ctl`) }));
    assert.equal(r.kvs[0]?.lease, id);
  }
  return out;
}

/** Runs the scenario against one server and returns a transcript (no server-specific values). */
async function scenario(srv: Server, ids: readonly bigint[]): Promise<string[]> {
  const creds = grpc.credentials.createInsecure();
  const kv = new KVClient(srv.endpoint, creds);
  const lease = new LeaseClient(srv.endpoint, creds);
  const out: string[] = [];
  try {
    for (const id of ids) {
      const key = `lease-id/${id}`;
      const g: LeaseGrantResponse = await call(lease.leaseGrant.bind(lease), LeaseGrantRequest.fromPartial({ ID: id, TTL: 600n }));
      assert.equal(g.ID, id, `LeaseGrant ID for ${id}`);
      assert.equal(g.TTL, 600n);
      out.push(`grant ${g.ID} ttl ${g.TTL}`);

      const p: PutResponse = await call(kv.put.bind(kv), PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from('v'), lease: id }));
      const r: RangeResponse = await call(kv.range.bind(kv), RangeRequest.fromPartial({ key: Buffer.from(key) }));
      assert.equal(r.kvs.length, 1);
      assert.equal(r.kvs[0]!.lease, id, `Range kv.lease for ${id}`);
      assert.equal(r.kvs[0]!.modRevision, p.header!.revision);
      out.push(`range ${key} lease ${r.kvs[0]!.lease}`);

      // Put with prev_kv and ignore_lease keeps the lease; the previous kv reports it too.
      const p2: PutResponse = await call(kv.put.bind(kv), PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from('v2'), ignoreLease: true, prevKv: true }));
      assert.equal(p2.prevKv?.lease, id);
      const r2: RangeResponse = await call(kv.range.bind(kv), RangeRequest.fromPartial({ key: Buffer.from(key) }));
      assert.equal(r2.kvs[0]!.lease, id, `ignore_lease keeps lease ${id}`);

      const t: LeaseTimeToLiveResponse = await call(lease.leaseTimeToLive.bind(lease), LeaseTimeToLiveRequest.fromPartial({ ID: id, keys: true }));
      assert.equal(t.ID, id, `TimeToLive ID for ${id}`);
      assert.equal(t.grantedTTL, 600n);
      assert.ok(t.TTL > 590n && t.TTL <= 600n, `remaining ${t.TTL}`);
      assert.deepEqual(t.keys.map(String), [key]);
      out.push(`ttl ${t.ID} granted ${t.grantedTTL} keys ${t.keys.map(String).join(',')}`);

      const ka = await keepAliveOnce(lease, id);
      assert.equal(ka.ID, id, `KeepAlive ID for ${id}`);
      assert.equal(ka.TTL, 600n);
      out.push(`keepalive ${ka.ID} ttl ${ka.TTL}`);
    }

    const l: LeaseLeasesResponse = await call(lease.leaseLeases.bind(lease), LeaseLeasesRequest.fromPartial({}));
    const listed = l.leases.map((s) => s.ID).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const want = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(listed, want, 'Leases lists exactly the granted IDs');
    out.push(`leases ${listed.join(',')}`);

    // etcdctl: hex in `lease list` / timetolive / keep-alive, decimal in JSON (parsed as text:
    // JSON.parse would round these IDs to doubles).
    if (hasEtcd()) out.push(...(await etcdctlChecks(srv, kv, ids)));
    else out.push('etcdctl not installed: etcdctl checks skipped');

    for (const id of ids) {
      await call(lease.leaseRevoke.bind(lease), LeaseRevokeRequest.fromPartial({ ID: id }));
      const r: RangeResponse = await call(kv.range.bind(kv), RangeRequest.fromPartial({ key: Buffer.from(`lease-id/${id}`), rangeEnd: Buffer.from(`lease-id/${id}0`) }));
      assert.equal(r.kvs.length, 0, `revoking ${id} deletes its keys`);
      out.push(`revoked ${id}`);
    }
    const l2: LeaseLeasesResponse = await call(lease.leaseLeases.bind(lease), LeaseLeasesRequest.fromPartial({}));
    assert.deepEqual(l2.leases, []);
  } finally {
    kv.close();
    lease.close();
  }
  return out;
}

/** Runs the scenario on a fresh server of ours and, if installed, on a fresh real etcd. */
async function differential(t: { skip(msg: string): void }, ids: readonly bigint[]): Promise<void> {
  const ours = await startOurServer();
  let got: string[];
  try {
    got = await scenario(ours, ids);
  } finally {
    await ours.stop();
  }
  if (!hasEtcd()) return t.skip('etcd is not installed: only our server checked');
  const etcd = await startRealEtcd();
  try {
    assert.deepEqual(got, await scenario(etcd, ids));
  } finally {
    await etcd.stop();
  }
}

test('lease IDs 2^53+1 and 2^63-1 round-trip exactly (gRPC and etcdctl), as on etcd', (t) => differential(t, [ABOVE_2_53, INT64_MAX]));

test('a negative lease ID round-trips exactly, as on etcd', (t) => differential(t, [NEGATIVE]));

test('lease IDs above 2^53 survive a restart of our server', async () => {
  const dir = await makeTempDir('lease-id-');
  try {
    let srv = await startOurServer({ dataDir: dir });
    const creds = grpc.credentials.createInsecure();
    try {
      const lease = new LeaseClient(srv.endpoint, creds);
      const kv = new KVClient(srv.endpoint, creds);
      await call(lease.leaseGrant.bind(lease), LeaseGrantRequest.fromPartial({ ID: ABOVE_2_53, TTL: 600n }));
      await call(lease.leaseGrant.bind(lease), LeaseGrantRequest.fromPartial({ ID: INT64_MAX, TTL: 600n }));
      await call(kv.put.bind(kv), PutRequest.fromPartial({ key: Buffer.from('r'), value: Buffer.from('v'), lease: INT64_MAX }));
      lease.close();
      kv.close();
    } finally {
      await srv.stop();
    }
    srv = await startOurServer({ dataDir: dir });
    try {
      const lease = new LeaseClient(srv.endpoint, creds);
      const kv = new KVClient(srv.endpoint, creds);
      const l: LeaseLeasesResponse = await call(lease.leaseLeases.bind(lease), LeaseLeasesRequest.fromPartial({}));
      assert.deepEqual(l.leases.map((s) => s.ID).sort((a, b) => (a < b ? -1 : 1)), [ABOVE_2_53, INT64_MAX]);
      const t: LeaseTimeToLiveResponse = await call(lease.leaseTimeToLive.bind(lease), LeaseTimeToLiveRequest.fromPartial({ ID: INT64_MAX, keys: true }));
      assert.equal(t.ID, INT64_MAX);
      assert.deepEqual(t.keys.map(String), ['r']);
      const r: RangeResponse = await call(kv.range.bind(kv), RangeRequest.fromPartial({ key: Buffer.from('r') }));
      assert.equal(r.kvs[0]?.lease, INT64_MAX);
      lease.close();
      kv.close();
    } finally {
      await srv.stop();
    }
  } finally {
    await removeTempDir(dir);
  }
});
