// grpc_server_started_total / grpc_server_handled_total as InstrumentedServer counts them: unary
// calls in their handler (whatever it answers, throws, or leaves unimplemented), streams by the
// interceptor. Real grpc-js client and server on loopback.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  HealthCheckRequest, HealthCheckResponse_ServingStatus, HealthClient, HealthService, type HealthCheckResponse,
} from '../../src/gen/grpc/health/v1/health.js';
import { InstrumentedServer } from '../../src/grpc/metrics.js';
import { createMetrics } from '../../src/metrics/index.js';
import { parseProm, sample } from '../helpers/prom.js';

const metrics = createMetrics();
let server: InstrumentedServer;
let unimplemented: InstrumentedServer;
let client: HealthClient;
let bare: HealthClient;

async function listen(s: grpc.Server): Promise<number> {
  return new Promise((res, rej) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? rej(e) : res(port))));
}

before(async () => {
  server = new InstrumentedServer(metrics);
  // One unary method whose answer depends on the service name asked for.
  server.addService(HealthService, {
    check(call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: grpc.sendUnaryData<HealthCheckResponse>) {
      const s = call.request.service;
      if (s === 'throw') throw new Error('boom');
      if (s === 'missing') cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else if (s === 'odd') cb({ code: 99, details: 'no such code' } as unknown as grpc.ServiceError);
      else cb(null, { status: HealthCheckResponse_ServingStatus.SERVING });
    },
  });
  // The same service with nothing implemented: grpc-js's UNIMPLEMENTED answers.
  unimplemented = new InstrumentedServer(metrics);
  unimplemented.addService(HealthService, {});
  client = new HealthClient(`127.0.0.1:${await listen(server)}`, grpc.credentials.createInsecure());
  bare = new HealthClient(`127.0.0.1:${await listen(unimplemented)}`, grpc.credentials.createInsecure());
});
after(() => {
  client.close();
  bare.close();
  server.forceShutdown();
  unimplemented.forceShutdown();
});

function check(c: HealthClient, service: string): Promise<grpc.status> {
  return new Promise((res) => c.check(HealthCheckRequest.fromPartial({ service }), (err) => res(err === null ? grpc.status.OK : err.code)));
}

test('unary answers, errors, throws and unimplemented methods are counted with their codes', async () => {
  assert.equal(await check(client, ''), grpc.status.OK);
  assert.equal(await check(client, ''), grpc.status.OK);
  assert.equal(await check(client, 'missing'), grpc.status.NOT_FOUND);
  assert.equal(await check(client, 'throw'), grpc.status.UNKNOWN);
  assert.equal(await check(client, 'odd'), 99);
  assert.equal(await check(bare, ''), grpc.status.UNIMPLEMENTED);
  // A stream nobody implemented: counted by the interceptor.
  await new Promise<void>((res) => {
    const w = bare.watch(HealthCheckRequest.fromPartial({}));
    w.on('error', (e: grpc.ServiceError) => { assert.equal(e.code, grpc.status.UNIMPLEMENTED); res(); });
    w.on('data', () => undefined);
  });
  const s = parseProm(await metrics.scrape());
  const check_ = { grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check', grpc_type: 'unary' };
  const watch = { grpc_service: 'grpc.health.v1.Health', grpc_method: 'Watch', grpc_type: 'server_stream' };
  assert.equal(sample(s, 'grpc_server_started_total', check_), 6);
  assert.equal(sample(s, 'grpc_server_handled_total', { ...check_, grpc_code: 'OK' }), 2);
  assert.equal(sample(s, 'grpc_server_handled_total', { ...check_, grpc_code: 'NotFound' }), 1);
  assert.equal(sample(s, 'grpc_server_handled_total', { ...check_, grpc_code: 'Unknown' }), 2, 'a throw, and a code grpc-go has no name for');
  assert.equal(sample(s, 'grpc_server_handled_total', { ...check_, grpc_code: 'Unimplemented' }), 1);
  assert.equal(sample(s, 'grpc_server_handled_total', { ...check_, grpc_code: 'Canceled' }), 0, 'every code is there, zeros too');
  assert.equal(sample(s, 'grpc_server_started_total', watch), 1);
  assert.equal(sample(s, 'grpc_server_handled_total', { ...watch, grpc_code: 'Unimplemented' }), 1);
});

test('a unary answer given after the client canceled counts as Canceled', async () => {
  let answer: (() => void) | undefined;
  const slow = new InstrumentedServer(metrics);
  slow.addService(HealthService, {
    check(_call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: grpc.sendUnaryData<HealthCheckResponse>) {
      answer = () => cb(null, { status: HealthCheckResponse_ServingStatus.SERVING });
    },
  });
  const c = new HealthClient(`127.0.0.1:${await listen(slow)}`, grpc.credentials.createInsecure());
  try {
    const before = sample(parseProm(await metrics.scrape()), 'grpc_server_handled_total', { grpc_method: 'Check', grpc_code: 'Canceled' });
    const call = c.check(HealthCheckRequest.fromPartial({}), () => undefined);
    while (answer === undefined) await new Promise((r) => setTimeout(r, 5));
    call.cancel();
    await new Promise((r) => setTimeout(r, 100));
    answer();
    const after_ = sample(parseProm(await metrics.scrape()), 'grpc_server_handled_total', { grpc_method: 'Check', grpc_code: 'Canceled' });
    assert.equal(after_ - before, 1);
  } finally {
    c.close();
    slow.forceShutdown();
  }
});
