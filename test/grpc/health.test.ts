// grpc.health.v1.Health on the client port answers as etcd's (grpc-go's health server).
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthCheckResponse_ServingStatus, HealthClient, type HealthCheckResponse } from '../../src/gen/grpc/health/v1/health.js';
import { hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

async function probe(endpoint: string): Promise<string[]> {
  const client = new HealthClient(endpoint, grpc.credentials.createInsecure());
  const check = (service: string) => new Promise<string>((resolve) => {
    client.check({ service }, (err: grpc.ServiceError | null, res: HealthCheckResponse) => {
      resolve(err ? `error ${err.code} ${err.details}` : HealthCheckResponse_ServingStatus[res.status] ?? String(res.status));
    });
  });
  try {
    return [await check(''), await check('no.such.Service')];
  } finally {
    client.close();
  }
}

test('health Check: "" is SERVING, unknown services NOT_FOUND, as etcd', async (t) => {
  const servers: Server[] = [await startOurServer()];
  try {
    const ours = await probe(servers[0]!.endpoint);
    assert.deepEqual(ours, ['SERVING', `error ${grpc.status.NOT_FOUND} unknown service`]);
    if (!hasEtcd()) return t.skip('etcd is not installed');
    servers.push(await startRealEtcd());
    assert.deepEqual(await probe(servers[1]!.endpoint), ours);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});
