// TLS on the peer port: a 3-member cluster of ours with https:// peer URLs and
// --peer-client-cert-auth elects a leader and replicates; a peer without a certificate, or with one
// from another CA, is refused at the handshake; a learner added with an https:// peer URL joins
// (GET /members over TLS), replicates (snapshot or log over TLS) and is promoted through a
// follower (the forwarded /members/promote over TLS).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { etcdctl, freePort, hasEtcd, makeTempDir, removeTempDir, startOurServer } from '../helpers/procs.js';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { agreedLeader, endpointStatus, eventually, get, put } from './helpers.js';

const skip = (!hasEtcd() || !hasOpenssl()) && 'needs /usr/bin/etcdctl and /usr/bin/openssl';

let dir = '';
let ca: TestCa;
let peer: IssuedCert;
let intruder: IssuedCert;
let c: OurCluster;
before(async () => {
  if (skip !== false) return;
  dir = await makeTempDir('peer-tls-');
  ca = makeCa(dir, 'peer-ca');
  peer = ca.server('peer');
  // Same subject names, signed by a CA the members do not trust.
  intruder = makeCa(dir, 'other-ca').server('intruder');
  c = await startOurCluster(3, { peerTls: { ca: ca.ca, cert: peer.cert, key: peer.key } });
});
after(async () => {
  await c?.stop();
  if (dir !== '') await removeTempDir(dir);
});


/** GET <peer>/members over TLS with the given client certificate (or none): the status, or the error. */
async function peerGet(url: string, client: IssuedCert | undefined): Promise<number | Error> {
  const pool = new Pool(url, {
    connect: { ca: readFileSync(ca.ca), ...(client !== undefined ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) },
  });
  try {
    const res = await pool.request({ method: 'GET', path: '/members' });
    await res.body.dump();
    return res.statusCode;
  } catch (e) {
    return e as Error;
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}

/** curl's exit code for GET <url>/members trusting the peer CA (0: answered). */
async function curlExit(url: string, ...args: string[]): Promise<number> {
  try {
    await promisify(execFile)('curl', ['-sS', '-o', '/dev/null', '--cacert', ca.ca, ...args, `${url}/members`]);
    return 0;
  } catch (e) {
    return (e as { code: number }).code;
  }
}

test('https peers with client certificate auth elect a leader and replicate', { skip }, async () => {
  assert.match(c.members[0]!.peerUrl, /^https:\/\//);
  await eventually('a leader', () => agreedLeader(c.running()));
  await put(c.members[0]!.endpoint, 'over-tls', 'v1');
  assert.equal(await get(c.members[2]!.endpoint, 'over-tls'), 'v1', 'a linearizable read on another member');
  const members = await etcdctl(c.running()[1]!, ['member', 'list']);
  assert.equal(members.code, 0, members.stderr);
  assert.equal((members.stdout.match(/https:\/\/127\.0\.0\.1:\d+/g) ?? []).length, 3, members.stdout);
});

test('a peer without a certificate signed by the peer CA is refused at the handshake', { skip }, async () => {
  const url = c.members[1]!.listenPeerUrl;
  // The cluster's own certificate gets in: the refusals below are the certificate's doing.
  assert.equal(await peerGet(url, peer), 200);
  const none = await peerGet(url, undefined);
  assert.ok(none instanceof Error, `no certificate: ${String(none)}`);
  const other = await peerGet(url, intruder);
  assert.ok(other instanceof Error, `another CA: ${String(other)}`);
  // curl, the plain https client: no certificate, then the other CA's.
  const curl = (...args: string[]): Promise<number> => curlExit(url, ...args);
  assert.notEqual(await curl(), 0, 'curl without a certificate');
  assert.notEqual(await curl('--cert', intruder.cert, '--key', intruder.key), 0, 'curl with another CA\'s certificate');
  assert.equal(await curl('--cert', peer.cert, '--key', peer.key), 0, 'curl with the peer certificate');
  // Plain HTTP on the TLS port gets nothing either.
  await assert.rejects(fetch(`${url.replace('https:', 'http:')}/members`));
});

test('a learner added with an https peer URL joins, replicates and is promoted', { skip }, async () => {
  await eventually('a leader', () => agreedLeader(c.running()));
  const m3 = await c.prepare('m3');
  assert.match(m3.peerUrl, /^https:\/\//);
  const ep = c.running()[0]!;
  await put(ep, 'before-join', 'b');
  // Members must have been connected for 5 s (etcd's HealthInterval) before a change.
  await eventually('the learner added', async () => {
    const r = await etcdctl(ep, ['member', 'add', 'm3', `--peer-urls=${m3.peerUrl}`, '--learner']);
    if (r.code !== 0) assert.match(r.stderr, /etcdserver: unhealthy cluster/);
    return r.code === 0 ? r : undefined;
  });
  await c.join(m3);
  await eventually('the learner replicates', async () => ((await get(m3.endpoint, 'before-join', true)) === 'b' ? true : undefined));
  // Promote through a follower: it forwards the request to the leader over the peer port.
  const status = await endpointStatus(c.running().slice(0, 3).join(','));
  const follower = status.find((s) => BigInt(s.Status.header.member_id) !== BigInt(s.Status.leader))!;
  const learnerId = await eventually('the learner listed', async () => {
    const r = await etcdctl(ep, ['member', 'list']);
    return /^([0-9a-f]+), started, m3, .*true$/m.exec(r.stdout)?.[1];
  });
  await eventually('promoted', async () => {
    const r = await etcdctl(follower.Endpoint, ['member', 'promote', learnerId]);
    return r.code === 0 ? true : undefined;
  });
  await put(m3.endpoint, 'from-m3', 'y');
  assert.equal(await get(c.members[1]!.endpoint, 'from-m3'), 'y');
});

test('--peer-cert-allowed-cn refuses a peer certificate of the same CA with another Common Name', { skip }, async () => {
  const url = `https://127.0.0.1:${await freePort()}`;
  const server = await startOurServer({
    extraArgs: [
      '--listen-peer-urls', url, '--initial-advertise-peer-urls', url, '--initial-cluster', `default=${url}`,
      '--peer-cert-file', peer.cert, '--peer-key-file', peer.key, '--peer-trusted-ca-file', ca.ca,
      '--peer-client-cert-auth', '--peer-cert-allowed-cn', 'peer',
    ],
  });
  try {
    const stranger = ca.client('stranger', 'not-a-peer');
    assert.equal(await curlExit(url, '--cert', peer.cert, '--key', peer.key), 0, 'CN peer is allowed');
    assert.notEqual(await curlExit(url, '--cert', stranger.cert, '--key', stranger.key), 0, 'CN not-a-peer is refused');
  } finally {
    await server.stop();
  }
});
