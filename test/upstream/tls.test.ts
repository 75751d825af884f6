// TLS to the upstream: certificates made by openssl here (a CA, a member certificate for
// 127.0.0.1, a client certificate), a real etcd 3.4 member requiring client certificates, and
// our gateway with --cacert/--cert/--key serving plain HTTP in front of it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { StatusError } from '../../src/backend/errors.js';
import * as pb from '../../src/gen/etcdserverpb/rpc.js';
import { UpstreamBackend } from '../../src/upstream/backend.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { startServerWith } from '../gateway/harness.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcd and /usr/bin/openssl';
let dir: string;
let cluster: EtcdCluster;
let ca: TestCa;
let client: IssuedCert;

before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('gw-tls-');
  ca = makeCa(dir);
  const member = ca.server('member');
  client = ca.client('client', 'root');
  cluster = await startEtcdCluster(1, [], { cert: member.cert, key: member.key, ca: ca.ca });
});
after(async () => {
  await cluster?.stop();
  if (dir !== undefined) await removeTempDir(dir);
});

test('the gateway talks TLS with a client certificate to the cluster', { skip }, async () => {
  const tlsEp = cluster.members[0]!.tlsEndpoint!;
  const gw = await startServerWith(['--endpoints', tlsEp, '--cacert', ca.ca, '--cert', client.cert, '--key', client.key]);
  try {
    const put = await fetch(`${gw.url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: 'dGxz', value: 'b2s=' }) });
    assert.equal(put.status, 200);
    const v2 = await fetch(`${gw.url}/v2/keys/over-tls`, { method: 'PUT', body: 'value=yes', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(v2.status, 201);
    // The data is in the member (read over its plain listener).
    const direct = await fetch(`http://${cluster.members[0]!.endpoint}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'dGxz' }) });
    const kv = ((await direct.json()) as { kvs: { value: string }[] }).kvs[0]!;
    assert.equal(Buffer.from(kv.value, 'base64').toString(), 'ok');
  } finally {
    await gw.close();
  }
});

test('without a client certificate the member refuses the handshake: a clear UNAVAILABLE', { skip }, async () => {
  const b = new UpstreamBackend({ endpoints: [cluster.members[0]!.tlsEndpoint!], timeoutMs: 2000, tls: { ca: readFileSync(ca.ca) }, maxRequestBytes: 1 << 20, watchBacklogBytesMax: 1 << 20 });
  try {
    await assert.rejects(b.range(pb.RangeRequest.fromPartial({ key: Buffer.from('tls') })), (e: unknown) => {
      assert.ok(e instanceof StatusError, String(e));
      assert.ok(e.grpcCode === 14 || e.grpcCode === 4, `code ${e.grpcCode}: ${e.message}`);
      return true;
    });
  } finally {
    await b.close();
  }
});
