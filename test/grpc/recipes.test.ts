// v3lockpb.Lock and v3electionpb.Election: the same scenario against real etcd and against our
// server must print the same transcript.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LeaseClient } from '../../src/gen/etcdserverpb/rpc.js';
import { ElectionClient, type CampaignResponse, type LeaderKey, type LeaderResponse } from '../../src/gen/v3electionpb/v3election.js';
import { LockClient, type LockResponse, type UnlockResponse } from '../../src/gen/v3lockpb/v3lock.js';
import { hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
function call<Req, Res>(fn: (req: Req, cb: Callback<Res>) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scenario(endpoint: string): Promise<string[]> {
  const creds = grpc.credentials.createInsecure();
  const lock = new LockClient(endpoint, creds);
  const election = new ElectionClient(endpoint, creds);
  const lease = new LeaseClient(endpoint, creds);
  const out: string[] = [];
  const err = (e: unknown) => {
    const s = e as grpc.ServiceError;
    out.push(`error ${s.code} ${s.details}`);
  };
  try {
    await call(lease.leaseGrant.bind(lease), { TTL: 30n, ID: 7001n });
    await call(lease.leaseGrant.bind(lease), { TTL: 30n, ID: 7002n });
    const first: LockResponse = await call(lock.lock.bind(lock), { name: Buffer.from('mylock'), lease: 7001n });
    out.push(`locked ${first.key} rev ${first.header!.revision}`);
    let secondDone = false;
    const second = (call(lock.lock.bind(lock), { name: Buffer.from('mylock'), lease: 7002n }) as Promise<LockResponse>).then((r) => {
      secondDone = true;
      return r;
    });
    await sleep(300);
    out.push(`second waits: ${!secondDone}`);
    const un: UnlockResponse = await call(lock.unlock.bind(lock), { key: first.key });
    out.push(`unlocked rev ${un.header!.revision}`);
    const r2 = await second;
    out.push(`locked ${r2.key} rev ${r2.header!.revision}`);
    await call(lock.lock.bind(lock), { name: Buffer.from('x'), lease: 424242n }).catch(err);
    await call(lock.unlock.bind(lock), { key: Buffer.alloc(0) }).catch(err);

    const c: CampaignResponse = await call(election.campaign.bind(election), { name: Buffer.from('elect'), lease: 7001n, value: Buffer.from('v1') });
    const leader = c.leader as LeaderKey;
    out.push(`campaign ${leader.key} rev ${leader.rev} lease ${leader.lease}`);
    const observed: string[] = [];
    const obs = election.observe({ name: Buffer.from('elect') });
    obs.on('data', (d: { kv?: { value: Buffer; version: bigint } }) => observed.push(`${d.kv?.value} v${d.kv?.version}`));
    obs.on('error', () => undefined);
    await sleep(200);
    const l: LeaderResponse = await call(election.leader.bind(election), { name: Buffer.from('elect') });
    out.push(`leader ${l.kv!.value}`);
    await call(election.proclaim.bind(election), { leader, value: Buffer.from('v2') });
    await sleep(200);
    await call(election.resign.bind(election), { leader });
    await call(election.leader.bind(election), { name: Buffer.from('elect') }).catch(err);
    await call(election.proclaim.bind(election), { leader, value: Buffer.from('v3') }).catch(err);
    await call(election.proclaim.bind(election), { leader: undefined, value: Buffer.from('v3') }).catch(err);
    await call(election.resign.bind(election), { leader: { name: Buffer.from('elect'), key: Buffer.from('none'), rev: 1n, lease: 1n } });
    out.push(`observed ${observed.join(', ')}`);
    obs.cancel();
  } finally {
    lock.close();
    election.close();
    lease.close();
  }
  return out;
}

let etcd: Server | undefined;
let ours: Server;
before(async () => {
  ours = await startOurServer();
  if (hasEtcd()) etcd = await startRealEtcd();
});
after(async () => {
  await ours?.stop();
  await etcd?.stop();
});

test('Lock and Election give the same transcript as etcd 3.4', async (t) => {
  const got = await scenario(ours.endpoint);
  assert.ok(got.includes('second waits: true'), got.join('\n'));
  if (etcd === undefined) return t.skip('etcd is not installed');
  const want = await scenario(etcd.endpoint);
  assert.deepEqual(got, want);
});
