// TLS to the upstream: certificates made by openssl here (a CA, a member certificate for
// 127.0.0.1, a client certificate), a real etcd 3.4 member requiring client certificates, and
// our gateway with --cacert/--cert/--key serving plain HTTP in front of it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { StatusError } from '../../src/backend/errors.js';
import * as pb from '../../src/gen/etcdserverpb/rpc.js';
import { UpstreamBackend } from '../../src/upstream/backend.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { hasEtcd, makeTempDir, removeTempDir } from '../helpers/procs.js';
import { startServerWith } from '../gateway/harness.js';

const skip = (!hasEtcd() || !existsSync('/usr/bin/openssl')) && 'needs /usr/bin/etcd and /usr/bin/openssl';
let dir: string;
let cluster: EtcdCluster;

function openssl(args: string[]): void {
  execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A key and a certificate signed by the CA; `san` for a server certificate. */
function issue(name: string, cn: string, san?: string): void {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, san !== undefined ? `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n` : 'extendedKeyUsage=clientAuth\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext]);
}

before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('gw-tls-');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test-ca']);
  issue('member', 'member', 'IP:127.0.0.1,DNS:localhost');
  issue('client', 'root');
  cluster = await startEtcdCluster(1, [], { cert: join(dir, 'member.pem'), key: join(dir, 'member.key'), ca: join(dir, 'ca.pem') });
});
after(async () => {
  await cluster?.stop();
  if (dir !== undefined) await removeTempDir(dir);
});

test('the gateway talks TLS with a client certificate to the cluster', { skip }, async () => {
  const tlsEp = cluster.members[0]!.tlsEndpoint!;
  const gw = await startServerWith(['--endpoints', tlsEp, '--cacert', join(dir, 'ca.pem'), '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client.key')]);
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
  const b = new UpstreamBackend({ endpoints: [cluster.members[0]!.tlsEndpoint!], timeoutMs: 2000, tls: { ca: readFileSync(join(dir, 'ca.pem')) }, maxRequestBytes: 1 << 20, watchBacklogBytesMax: 1 << 20 });
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
