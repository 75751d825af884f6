// A learner's client RPCs, as etcd 3.4 restricts them: only Maintenance.Status and serializable
// Range are served; every other call and every stream is refused with UNAVAILABLE "etcdserver: rpc
// not supported for learner" (gRPC through etcdctl and grpc-js, the v3 gateway), while v2 is served
// whole. The same probe runs against a real etcd 3.4 learner and ours must answer the same; after
// `member promote` the same member of ours serves everything, without a restart.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WatchClient, WatchRequest, type WatchResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { HealthCheckRequest, HealthClient, type HealthCheckResponse } from '../../src/gen/grpc/health/v1/health.js';
import { cleanEnv, ETCD_BIN, etcdctl, freePort, hasEtcd, launch, startRealEtcd, type Server } from '../helpers/procs.js';
import { startOurCluster, type OurCluster, type OurMember } from '../helpers/ourcluster.js';
import { parseProm } from '../helpers/prom.js';
import { endpointStatus, eventually, get, parseJsonBig, put } from './helpers.js';

const REFUSED = 'etcdserver: rpc not supported for learner';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** etcdctl's stderr without clientv3's retry warnings (one JSON log line per attempt). */
const errorLines = (stderr: string): string => stderr.split('\n').filter((l) => l !== '' && !l.includes('retry_interceptor')).join('\n');

async function post(endpoint: string, path: string, body: unknown): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** The first thing a gRPC watch stream yields: a response, or the status it failed with. */
function grpcWatch(endpoint: string, key: string): Promise<{ code: number; details: string } | { created: boolean }> {
  const client = new WatchClient(endpoint, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    const call = client.watch();
    const done = (r: { code: number; details: string } | { created: boolean }): void => {
      call.removeAllListeners();
      call.on('error', () => undefined);
      call.cancel();
      client.close();
      resolve(r);
    };
    call.on('data', (r: WatchResponse) => done({ created: r.created }));
    call.on('error', (e: grpc.ServiceError) => done({ code: e.code, details: e.details }));
    call.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from(key) } } }));
  });
}

/** grpc.health.v1 Check: the serving status, or the status code the call failed with. */
function grpcHealth(endpoint: string): Promise<{ code: number; details: string } | { status: number }> {
  const client = new HealthClient(endpoint, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.check(HealthCheckRequest.fromPartial({}), (err: grpc.ServiceError | null, r?: HealthCheckResponse) => {
      client.close();
      resolve(err !== null ? { code: err.code, details: err.details } : { status: r!.status });
    });
  });
}

/** What a member answers to each kind of client call (the key `k` holds "v" cluster-wide). */
async function probe(endpoint: string) {
  const putR = await etcdctl(endpoint, ['put', 'k', 'other']);
  const getR = await etcdctl(endpoint, ['get', 'k', '--print-value-only']);
  const serial = await etcdctl(endpoint, ['get', 'k', '--print-value-only', '--consistency=s']);
  const members = await etcdctl(endpoint, ['member', 'list']);
  const health = await etcdctl(endpoint, ['endpoint', 'health']);
  return {
    put: { code: putR.code, stderr: errorLines(putR.stderr) },
    get: { code: getR.code, stderr: errorLines(getR.stderr) },
    serializableGet: { code: serial.code, stdout: serial.stdout.trim() },
    memberList: { code: members.code, stderr: errorLines(members.stderr) },
    // etcdctl's health probe is a linearizable Get.
    health: { code: health.code, out: errorLines(health.stdout + health.stderr).replace(endpoint, 'EP') },
    statusIsLearner: (await endpointStatus(endpoint))[0]!.Status.isLearner ?? false,
    grpcWatch: await grpcWatch(endpoint, 'k'),
    grpcHealth: await grpcHealth(endpoint),
    gwPut: await post(endpoint, '/v3/kv/put', { key: b64('k'), value: b64('other') }),
    gwRange: (await post(endpoint, '/v3/kv/range', { key: b64('k') })).status,
    gwSerializableRange: (await post(endpoint, '/v3/kv/range', { key: b64('k'), serializable: true })).status,
    gwStatus: (await post(endpoint, '/v3/maintenance/status', {})).status,
    gwWatch: await post(endpoint, '/v3/watch', { create_request: { key: b64('k') } }),
    gwSnapshot: await post(endpoint, '/v3/maintenance/snapshot', {}),
    // etcd 3.4's v2 API has no learner check: a learner's v2 write is forwarded to the leader.
    v2Put: (await fetch(`http://${endpoint}/v2/keys/v2key`, { method: 'PUT', body: new URLSearchParams({ value: 'x' }) })).status,
  };
}

const EXPECTED_ON_LEARNER = {
  put: { code: 1, stderr: `Error: ${REFUSED}` },
  get: { code: 1, stderr: `Error: ${REFUSED}` },
  serializableGet: { code: 0, stdout: 'v' },
  memberList: { code: 1, stderr: `Error: ${REFUSED}` },
  health: { code: 1, out: `EP is unhealthy: failed to commit proposal: ${REFUSED}\nError: unhealthy cluster` },
  statusIsLearner: true,
  grpcWatch: { code: grpc.status.UNAVAILABLE, details: REFUSED },
  grpcHealth: { code: grpc.status.UNAVAILABLE, details: REFUSED },
  gwPut: { status: 503, body: `{"error":"${REFUSED}","message":"${REFUSED}","code":14}` },
  gwRange: 503,
  gwSerializableRange: 200,
  gwStatus: 200,
  gwWatch: { status: 503, body: `{"error":{"grpc_code":14,"http_code":503,"message":"${REFUSED}","http_status":"Service Unavailable"}}` },
  gwSnapshot: { status: 503, body: `{"error":{"grpc_code":14,"http_code":503,"message":"${REFUSED}","http_status":"Service Unavailable"}}` },
  v2Put: 201,
};

const hexId = (id: string | number): string => BigInt(id).toString(16);

async function addLearner(voter: string, name: string, peerUrl: string): Promise<string> {
  // A change needs every voter connected for a while (etcd's strict reconfig check).
  const out = await eventually('the learner added', async () => {
    const r = await etcdctl(voter, ['member', 'add', name, `--peer-urls=${peerUrl}`, '--learner']);
    return r.code === 0 ? r.stdout : undefined;
  });
  const id = /Member +([0-9a-f]+) added/.exec(out)?.[1];
  assert.ok(id, out);
  return id;
}

let ours: OurCluster | undefined;
let learner: OurMember;
let learnerId: string;
before(async () => {
  ours = await startOurCluster(1);
  await put(ours.members[0]!.endpoint, 'k', 'v');
  learner = await ours.prepare('l');
  learnerId = await addLearner(ours.members[0]!.endpoint, 'l', learner.peerUrl);
  await ours.join(learner);
  await eventually('the learner replicates', async () => ((await get(learner.endpoint, 'k', true)) === 'v' ? true : undefined));
});
after(async () => {
  await ours?.stop();
});

test('a learner of ours serves Status and serializable Range only, with etcd 3.4\'s refusal elsewhere', async () => {
  assert.deepEqual(await probe(learner.endpoint), EXPECTED_ON_LEARNER);
  // The refused put changed nothing; the v2 write went through the leader.
  assert.equal(await get(ours!.members[0]!.endpoint, 'k'), 'v');
  // Refused calls are not counted (etcd's prometheus interceptor runs after its learner check);
  // the served Status calls are.
  const m = parseProm(await (await fetch(`http://${learner.endpoint}/metrics`)).text());
  // Sums the samples (a method's counters exist once it is first called, or from the start).
  const count = (name: string, service: string, method: string, code?: string): number => m
    .filter((x) => x.name === name && x.labels.grpc_service === service && x.labels.grpc_method === method && (code === undefined || x.labels.grpc_code === code))
    .reduce((n, x) => n + x.value, 0);
  for (const [service, method] of [['etcdserverpb.KV', 'Put'], ['etcdserverpb.Watch', 'Watch'], ['etcdserverpb.Cluster', 'MemberList']] as const) {
    assert.equal(count('grpc_server_started_total', service, method), 0, `${method} started`);
    assert.equal(count('grpc_server_handled_total', service, method), 0, `${method} handled`);
  }
  assert.ok(count('grpc_server_handled_total', 'etcdserverpb.Maintenance', 'Status', 'OK') >= 1);
});

test('a real etcd 3.4 learner answers the same', { skip: !hasEtcd() }, async () => {
  const voter = await startRealEtcd();
  let real: Server | undefined;
  try {
    await put(voter.endpoint, 'k', 'v');
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    await addLearner(voter.endpoint, 'l', peerUrl);
    const root = join(voter.dataDir, '..');
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    real = await launch({
      name: 'etcd', command: ETCD_BIN, env: cleanEnv(), clientPort, peerUrl, dataDir: join(root, 'learner'),
      logPath: join(root, 'learner.log'), ownedDirs: [],
      args: [
        '--name', 'l', '--data-dir', join(root, 'learner'), '--enable-v2',
        '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', `default=${voter.peerUrl},l=${peerUrl}`, '--initial-cluster-state', 'existing',
      ],
    });
    const r = real;
    await eventually('the real learner replicates', async () => ((await get(r.endpoint, 'k', true)) === 'v' ? true : undefined));
    assert.deepEqual(await probe(real.endpoint), EXPECTED_ON_LEARNER);
  } finally {
    await real?.stop();
    await voter.stop();
  }
});

test('after member promote, the same member serves everything (no restart)', async () => {
  const promoted = await eventually('promoted', async () => {
    const r = await etcdctl(ours!.members[0]!.endpoint, ['member', 'promote', learnerId]);
    return r.code === 0 ? r.stdout : undefined;
  });
  assert.match(promoted, new RegExp(`Member +${learnerId} promoted`));
  const ep = learner.endpoint;
  // The promotion reaches this member through its log: wait until it knows itself a voter.
  await eventually('a voter now', async () => ((await endpointStatus(ep))[0]!.Status.isLearner !== true ? true : undefined));
  const w = grpcWatch(ep, 'after');
  const putR = await etcdctl(ep, ['put', 'k', 'promoted']);
  assert.equal(putR.code, 0, putR.stderr);
  const getR = await etcdctl(ep, ['get', 'k', '--print-value-only']);
  assert.deepEqual({ code: getR.code, out: getR.stdout.trim() }, { code: 0, out: 'promoted' });
  assert.deepEqual(await w, { created: true });
  const list = parseJsonBig((await etcdctl(ep, ['member', 'list', '-w', 'json'])).stdout) as { members: { ID: string | number; isLearner?: boolean }[] };
  assert.equal(list.members.find((m) => hexId(m.ID) === learnerId)?.isLearner ?? false, false);
  const gw = await post(ep, '/v3/kv/put', { key: b64('k2'), value: b64('x') });
  assert.equal(gw.status, 200, gw.body);
  const snap = await fetch(`http://${ep}/v3/maintenance/snapshot`, { method: 'POST', body: '{}' });
  assert.equal(snap.status, 200);
  assert.match(await snap.text(), /"blob"/);
});
