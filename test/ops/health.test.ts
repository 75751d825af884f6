// /health, /livez and /readyz with etcd 3.5's semantics: a real server flips on NOSPACE and
// CORRUPT alarms raised over gRPC; the no-leader and failed-storage cases use a stub backend
// whose healthFacts() says so (a single embedded member always has a leader).
import * as grpc from '@grpc/grpc-js';
import Fastify from 'fastify';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import type { HealthFacts, V3Backend } from '../../src/backend/index.js';
import {
  AlarmRequest, AlarmRequest_AlarmAction as Action, AlarmType, MaintenanceClient, RangeRequest, type AlarmResponse, type RangeResponse,
} from '../../src/gen/etcdserverpb/rpc.js';
import { HealthCheckResponse_ServingStatus as Serving, HealthClient, type HealthCheckResponse } from '../../src/gen/grpc/health/v1/health.js';
import { opsRoutes } from '../../src/http/ops.js';
import { createMetrics } from '../../src/metrics/index.js';
import { startGateway, type GatewayServer } from '../gateway/harness.js';
import { parseProm, sample } from '../helpers/prom.js';

async function get(url: string, method: 'GET' | 'POST' | 'HEAD' = 'GET'): Promise<{ status: number; body: string; type: string }> {
  const res = await request(url, { method });
  return { status: res.statusCode, body: await res.body.text(), type: String(res.headers['content-type']) };
}

describe('a real server: alarms raised over gRPC', () => {
  let srv: GatewayServer;
  let maint: MaintenanceClient;
  let health: HealthClient;
  before(async () => {
    srv = await startGateway();
    const endpoint = srv.url.replace('http://', '');
    maint = new MaintenanceClient(endpoint, grpc.credentials.createInsecure());
    health = new HealthClient(endpoint, grpc.credentials.createInsecure());
  });
  after(async () => {
    maint.close();
    health.close();
    await srv.close();
  });

  const alarm = (action: Action, type: AlarmType): Promise<AlarmResponse> => new Promise((resolve, reject) => {
    maint.alarm(AlarmRequest.fromPartial({ action, memberID: srv.backend.memberId, alarm: type }), (e, r) => (e ? reject(e) : resolve(r)));
  });
  const grpcHealth = (): Promise<Serving> => new Promise((resolve, reject) => {
    health.check({ service: '' }, (e: grpc.ServiceError | null, r: HealthCheckResponse) => (e ? reject(e) : resolve(r.status)));
  });

  test('healthy: /health, /livez, /readyz answer as etcd 3.5', async () => {
    const h = await get(`${srv.url}/health`);
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body), { health: 'true', reason: '' });
    assert.match(h.type, /^text\/plain/);
    assert.deepEqual(await get(`${srv.url}/livez`), { status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
    assert.equal((await get(`${srv.url}/readyz?verbose`)).body,
      '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n');
    assert.equal((await get(`${srv.url}/readyz?verbose&exclude=non_learner&exclude=nope`)).body,
      '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n');
    assert.equal((await get(`${srv.url}/livez/serializable_read?verbose`)).body, '[+]serializable_read ok\nok\n');
    const post = await get(`${srv.url}/health`, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.body, 'Method Not Allowed\n');
    assert.equal((await get(`${srv.url}/readyz`, 'HEAD')).status, 405, 'HEAD too, as etcd');
  });

  test('NOSPACE fails /health (unless excluded) and the gRPC health service, not /readyz; deactivation restores it', async () => {
    await alarm(Action.ACTIVATE, AlarmType.NOSPACE);
    const h = await get(`${srv.url}/health`);
    assert.equal(h.status, 503);
    assert.deepEqual(JSON.parse(h.body), { health: 'false', reason: 'ALARM NOSPACE' });
    assert.equal((await get(`${srv.url}/health?exclude=NOSPACE`)).status, 200);
    assert.equal((await get(`${srv.url}/health?exclude=CORRUPT`)).status, 503);
    assert.equal((await get(`${srv.url}/readyz`)).status, 200, 'readyz only looks at CORRUPT, as etcd');
    assert.equal(await grpcHealth(), Serving.NOT_SERVING);

    await alarm(Action.DEACTIVATE, AlarmType.NOSPACE);
    assert.deepEqual(JSON.parse((await get(`${srv.url}/health`)).body), { health: 'true', reason: '' });
    assert.equal(await grpcHealth(), Serving.SERVING);
  });

  test('CORRUPT fails /readyz with the failing check listed, and /health', async () => {
    await alarm(Action.ACTIVATE, AlarmType.CORRUPT);
    const r = await get(`${srv.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(r.body, '[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\n\n');
    assert.equal((await get(`${srv.url}/readyz?exclude=data_corruption`)).status, 200);
    assert.equal((await get(`${srv.url}/livez`)).status, 200);
    assert.deepEqual(JSON.parse((await get(`${srv.url}/health`)).body), { health: 'false', reason: 'ALARM CORRUPT' });
    await alarm(Action.DEACTIVATE, AlarmType.CORRUPT);
    assert.equal((await get(`${srv.url}/readyz`)).status, 200);
  });
});

/** A backend that only answers what the health checks ask: its facts, and a keys-only read. */
function stubBackend(facts: HealthFacts, reads: RangeRequest[]): V3Backend {
  const stub: Pick<V3Backend, 'healthFacts' | 'range'> = {
    healthFacts: () => facts,
    range: async (req) => {
      reads.push(req);
      return { header: undefined, kvs: [], more: false, count: 0n } satisfies RangeResponse;
    },
  };
  return stub as V3Backend;
}

describe('a stub backend: no leader, failed storage', () => {
  const base: HealthFacts = { hasLeader: false, isLearner: false, alarms: [], storageFailure: undefined };

  test('no leader: /health is 503 "RAFT NO LEADER" unless serializable; /readyz fails the linearizable read; /livez is fine', async () => {
    const reads: RangeRequest[] = [];
    const app = Fastify();
    opsRoutes(app, stubBackend(base, reads), createMetrics({ defaultMetrics: false }));
    const h = await app.inject('/health');
    assert.equal(h.statusCode, 503);
    assert.deepEqual(JSON.parse(h.body), { health: 'false', reason: 'RAFT NO LEADER' });
    assert.equal(h.headers['x-content-type-options'], 'nosniff');
    assert.equal(reads.length, 0, 'no read when the leader check already failed');
    const s = await app.inject('/health?serializable=true');
    assert.equal(s.statusCode, 200);
    assert.deepEqual(reads.map((r) => [r.keysOnly, r.limit, r.serializable]), [[true, 1n, true]], 'serializable health still reads locally');
    const ready = await app.inject('/readyz');
    assert.equal(ready.statusCode, 503);
    assert.match(ready.body, /^\[-\]linearizable_read failed: etcdserver: no leader$/m);
    assert.match(ready.body, /^\[\+\]serializable_read ok$/m);
    assert.equal((await app.inject('/livez')).statusCode, 200);
    const m = parseProm((await app.inject('/metrics')).body);
    assert.equal(sample(m, 'etcd_server_health_failures'), 1, 'the failed /health counted');
    assert.equal(sample(m, 'etcd_server_health_success'), 1, 'the serializable one succeeded');
    await app.close();
  });

  test('failed storage fails every read check (etcd would have exited on the failed fsync)', async () => {
    const app = Fastify();
    opsRoutes(app, stubBackend({ ...base, hasLeader: true, storageFailure: 'EIO' }, []), createMetrics({ defaultMetrics: false }));
    const h = await app.inject('/health');
    assert.deepEqual(JSON.parse(h.body), { health: 'false', reason: 'RANGE ERROR:etcdserver: storage failed: EIO' });
    const live = await app.inject('/livez');
    assert.equal(live.statusCode, 503);
    assert.equal(live.body, '[-]serializable_read failed: etcdserver: storage failed: EIO\n\n');
    await app.close();
  });

  test('etcd_server_has_leader reads the same fact', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const srvStats = { hasLeader: false, isLeader: false };
    m.watchCore({ metricsStats: () => ({ ...zeroStats, ...srvStats }) });
    assert.equal(sample(parseProm(await m.scrape()), 'etcd_server_has_leader'), 0);
    srvStats.hasLeader = true;
    assert.equal(sample(parseProm(await m.scrape()), 'etcd_server_has_leader'), 1);
  });
});

const zeroStats = {
  leaderChanges: 0, proposalsCommitted: 0, proposalsApplied: 0, proposalsPending: 0, proposalsFailed: 0, dbSizeBytes: 0,
  dbSizeInUseBytes: 0, quotaBackendBytes: 0, keys: 0, watchers: 0, watchStreams: 0, currentRevision: 1, compactRevision: -1,
  puts: 0, deletes: 0, ranges: 0, txns: 0,
};
