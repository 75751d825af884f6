// etcdctl against a 3-member cluster of ours and a real etcd 3.4 cluster, side by side: member
// list, endpoint status --cluster, member add --learner / promote / remove print the same shape
// (fields, types, lines), only IDs, URLs and counters differ.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { etcdctl, hasEtcd } from '../helpers/procs.js';
import { startOurCluster, type OurCluster } from '../helpers/ourcluster.js';
import { agreedLeader, eventually, parseJsonBig } from './helpers.js';

/** The JSON's shape: keys and value types, arrays by their elements' shapes. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return [...new Set(v.map((x) => JSON.stringify(shape(x))))].map((s) => JSON.parse(s) as unknown);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]));
  // 64-bit IDs come back as strings from parseJsonBig: a number either way.
  return typeof v === 'string' && /^\d{16,}$/.test(v) ? 'number' : typeof v;
}

/** IDs (etcdctl pads them to 16 columns with spaces), URLs and names out of etcdctl's text. */
function normalize(text: string): string {
  // Members are listed in ID order, and IDs differ: sort the initial cluster's entries.
  return text.replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_, list: string) => `ETCD_INITIAL_CLUSTER="${normalize(list).split(',').sort().join(',')}"`).replace(/https?:\/\/[0-9.]+:\d+/g, '<URL>').replace(/ *\b[0-9a-f]{12,16}\b/g, ' <ID>').replace(/m\d=/g, 'mX=').replace(/"m\d"/g, '"mX"');
}

describe('etcdctl on a cluster of ours vs a real etcd 3.4 cluster', { skip: hasEtcd() ? false : 'needs /usr/bin/etcd' }, () => {
  let ours: OurCluster | undefined;
  let etcd: EtcdCluster | undefined;
  const both = (): [string, string][] => [['etcd', etcd!.endpoints], ['ours', ours!.endpoints()]];
  before(async () => {
    [ours, etcd] = await Promise.all([startOurCluster(3), startEtcdCluster(3)]);
    await eventually('our leader', () => agreedLeader(ours!.members.map((m) => m.endpoint)));
    await eventually('etcd leader', () => agreedLeader(etcd!.members.map((m) => m.endpoint)));
  });
  after(async () => {
    await Promise.all([ours?.stop(), etcd?.stop()]);
  });

  test('member list -w json', async () => {
    const out = await Promise.all(both().map(async ([, eps]) => {
      const r = await etcdctl(eps.split(',')[0]!, ['member', 'list', '-w', 'json']);
      assert.equal(r.code, 0, r.stderr);
      return parseJsonBig(r.stdout) as { members: { name: string }[] };
    }));
    assert.deepEqual(shape(out[1]), shape(out[0]));
    assert.equal(out[1]!.members.length, 3);
    assert.deepEqual(out[1]!.members.map((m) => m.name).sort(), ['m0', 'm1', 'm2']);
  });

  // Every member listed as an http:// URL, as users write them: grpc-go then sends the URL as the
  // HTTP/2 :authority (the client port drops the scheme, src/listener/authority.ts).
  test('endpoint status -w json on every member', async () => {
    const out = await Promise.all(both().map(async ([, eps]) => {
      const urls = eps.split(',').map((e) => `http://${e}`).join(',');
      const r = await etcdctl(urls, ['endpoint', 'status', '-w', 'json']);
      assert.equal(r.code, 0, r.stderr);
      return parseJsonBig(r.stdout) as { Status: { leader: string | number; raftTerm: number } }[];
    }));
    assert.deepEqual(shape(out[1]), shape(out[0]));
    assert.equal(out[1]!.length, 3);
    assert.equal(new Set(out[1]!.map((s) => String(s.Status.leader))).size, 1, 'one leader');
  });

  test('endpoint status --cluster -w json from one member', async () => {
    const out = await Promise.all(both().map(async ([, eps]) => {
      const r = await etcdctl(`http://${eps.split(',')[0]!}`, ['endpoint', 'status', '--cluster', '-w', 'json']);
      assert.equal(r.code, 0, r.stderr);
      return parseJsonBig(r.stdout) as { Endpoint: string }[];
    }));
    assert.deepEqual(shape(out[1]), shape(out[0]));
    assert.deepEqual(out[1]!.map((s) => s.Endpoint).sort(), ours!.endpoints().split(',').map((e) => `http://${e}`).sort());
  });

  test('member add --learner, promote (not in sync), remove: the same output', async () => {
    const run = async (eps: string, args: string[]): Promise<string> => {
      const r = await etcdctl(eps.split(',')[0]!, args);
      return normalize(`${r.code} ${r.stdout}${r.stderr.replace(/^.*?(Error: )/s, '$1')}`);
    };
    const results = await Promise.all(both().map(async ([, eps]) => {
      // Until every voter has been connected for 5 s both refuse it (unhealthy cluster); then it is added.
      const refusals = new Set<string>();
      const add = await eventually('a learner added', async () => {
        const r = await run(eps, ['member', 'add', 'newbie', '--peer-urls=http://127.0.0.1:9', '--learner']);
        if (!r.startsWith('0 ')) {
          refusals.add(r);
          throw new Error(r);
        }
        return r;
      });
      for (const r of refusals) assert.match(r, /^1 Error: etcdserver: unhealthy cluster/);
      const list = parseJsonBig((await etcdctl(eps.split(',')[0]!, ['member', 'list', '-w', 'json'])).stdout) as { members: { ID: string | number; isLearner?: boolean }[] };
      const learner = list.members.find((m) => m.isLearner === true);
      assert.ok(learner, `a learner after: ${add}`);
      const id = BigInt(learner.ID).toString(16);
      const promote = await run(eps, ['member', 'promote', id]);
      const remove = await run(eps, ['member', 'remove', id]);
      return { add, promote, remove };
    }));
    assert.deepEqual(results[1], results[0]);
    assert.match(results[1]!.promote, /can only promote a learner member which is in sync with leader/);
  });
});
