// Differential test of the v3 JSON gateway: the same request sequence goes to a fresh real etcd
// 3.4 (/usr/bin/etcd) and to our gateway (in process, real HTTP), step by step, and every step's
// status, Content-Type and body must match after normalising what must differ (cluster/member
// ids, raft term, hashes, sizes). Streams are read for a fixed time while follow-up steps run.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { hasEtcd, startRealEtcd, type Server } from '../helpers/procs.js';
import { startGateway, UPSTREAM_MODE, type GatewayServer } from './harness.js';

/**
 * topology: the answer depends on the cluster's shape, not on the gateway: in upstream mode
 * (TEST_UPSTREAM=1) a 3-member cluster answers it (three members; a follower's lease order and
 * its "not leader" to a leadership transfer) while the reference is one member, so it is compared
 * in embedded mode only.
 */
interface Call { method?: string; path: string; body?: string; contentType?: string; headers?: Record<string, string>; compare?: 'exact' | 'keys'; topology?: true }
interface StreamCall { stream: string; body: string; headers?: Record<string, string>; then?: Call[]; readMs?: number }
type Step = Call | StreamCall;

interface Answer { status: number; type: string; body: string }

function normalize(text: string): string {
  return text
    .replace(/"(cluster_id|member_id|raft_term|leader|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse|hash)":"?\d+"?/g, '"$1":"N"')
    .replace(/"(peerURLs|clientURLs)":\[[^\]]*\]/g, '"$1":[U]')
    .replace(/"ID":"(\d{12,})"/g, '"ID":"MEMBER"')
    .replace(/"blob":"[^"]*"/g, '"blob":"B"')
    .replace(/"remaining_bytes":"\d+",?/g, '');
}

/** Only the structure: the keys, recursively (for answers whose values are server-specific). */
function keysOf(text: string): string {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return typeof v;
  };
  try {
    return JSON.stringify(walk(JSON.parse(text)));
  } catch {
    return text;
  }
}

function send(base: string, c: Call): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(c.path, base);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: c.method ?? 'POST', headers: { 'content-type': c.contentType ?? 'application/x-www-form-urlencoded', ...c.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end(c.body ?? '');
  });
}

/** Opens a stream, waits for its first bytes (or 300 ms), runs the follow-ups, reads on, closes. */
async function stream(base: string, s: StreamCall): Promise<{ head: Answer; followUps: Answer[] }> {
  const u = new URL(s.stream, base);
  let status = 0;
  let type = '';
  let body = '';
  let firstData: () => void = () => undefined;
  const gotFirst = new Promise<void>((r) => { firstData = r; });
  const ended = new Promise<void>((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: s.headers ?? {} }, (res) => {
      status = res.statusCode ?? 0;
      type = String(res.headers['content-type']);
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; firstData(); });
      res.on('end', resolve);
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.end(s.body);
    setTimeout(() => { req.destroy(); resolve(); }, (s.readMs ?? 300) + 2000);
  });
  await Promise.race([gotFirst, new Promise((r) => setTimeout(r, 300))]);
  const followUps: Answer[] = [];
  for (const c of s.then ?? []) followUps.push(await send(base, c));
  await Promise.race([ended, new Promise((r) => setTimeout(r, s.readMs ?? 300))]);
  return { head: { status, type, body }, followUps };
}

const steps: Step[] = [
  // KV: put / range
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"MQ=="}' },
  { path: '/v3/kv/put', body: '{"key":"Yg==","value":"Mg=="}' },
  { path: '/v3/kv/put', body: '{"key":"Yw==","value":"Mw=="}' },
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"MTE=","prev_kv":true}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","range_end":"AA=="}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","range_end":"Yw==","limit":1}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","range_end":"AA==","limit":"2","sort_order":"DESCEND","sort_target":"MOD"}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","range_end":"AA==","keys_only":true}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","range_end":"AA==","count_only":true}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","revision":2}' },
  { path: '/v3/kv/range', body: '{"key":"bm9wZQ=="}' },
  { path: '/v3/kv/range', body: '{"key":"Yw==","range_end":"YQ=="}' },
  { path: '/v3/kv/range', body: '{"key":"AA==","range_end":"AA==","min_mod_revision":"3","max_mod_revision":4}' },
  { path: '/v3/kv/range', body: '{"key":"AA==","range_end":"AA==","sort_order":2,"sort_target":1,"limit":2}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","rangeEnd":"AA==","keysOnly":true,"countOnly":false,"limit":1}' },
  { path: '/v3/kv/put', body: '{"key":"ZW1wdHk="}' },
  // auth is off: any token a request carries is invalid, as in etcd
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', headers: { authorization: 'bogus.1' } },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', headers: { 'grpc-metadata-token': 'bogus.1' } },
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"MQ=="}', headers: { authorization: 'Bearer x' } },
  { stream: '/v3/watch', body: '{"create_request":{"key":"YQ=="}}', headers: { authorization: 'bogus' } },
  { path: '/v3/kv/range', body: '{"key":"ZW1wdHk="}' },
  // KV: validation and decoding errors
  { path: '/v3/kv/put', body: '{"key":"YQ==","ignore_value":true,"prev_kv":true}' },
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"eA==","ignore_value":true}' },
  { path: '/v3/kv/put', body: '{"key":"bm9wZQ==","ignore_value":true}' },
  { path: '/v3/kv/put', body: '{"key":"YQ==","lease":"123","ignore_lease":true}' },
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"eA==","lease":"123"}' },
  { path: '/v3/kv/put', body: '{"value":"eA=="}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","revision":100}' },
  { path: '/v3/kv/range', body: '{}' },
  { path: '/v3/kv/range', body: '' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="' },
  { path: '/v3/kv/range', body: 'not json' },
  { path: '/v3/kv/range', body: '{"key":"YQ"}' },
  { path: '/v3/kv/range', body: '{"key":"_-8="}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","limit":1.5}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","limit":"abc"}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","sort_order":"SIDEWAYS"}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","sort_order":7}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","serializable":"true"}' },
  { path: '/v3/kv/range', body: '[]' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="} trailing' },
  { path: '/v3/kv/range', body: '{"KEY":"YQ=="}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","bogus":1,"revision":null}' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', contentType: 'text/plain' },
  // KV: delete and txn
  { path: '/v3/kv/deleterange', body: '{"key":"ZW1wdHk=","prev_kv":true}' },
  { path: '/v3/kv/deleterange', body: '{}' },
  { path: '/v3/kv/txn', body: '{"compare":[{"key":"YQ==","target":"VALUE","result":"EQUAL","value":"MTE="}],"success":[{"request_put":{"key":"YQ==","value":"MTI="}},{"request_range":{"key":"YQ=="}}],"failure":[{"request_range":{"key":"Yg=="}}]}' },
  { path: '/v3/kv/txn', body: '{"compare":[{"key":"YQ==","target":"VALUE","result":"EQUAL","value":"MTE="}],"success":[{"request_put":{"key":"YQ==","value":"MTI="}}],"failure":[{"request_range":{"key":"Yg=="}},{"request_delete_range":{"key":"bm9uZQ=="}}]}' },
  { path: '/v3/kv/txn', body: '{}' },
  { path: '/v3/kv/txn', body: '{"compare":[{"key":"bm9uZQ==","target":"CREATE","result":"EQUAL","create_revision":"0"}],"success":[{"request_put":{"key":"bm9uZQ==","value":"MQ=="}}]}' },
  { path: '/v3/kv/txn', body: '{"success":[{"request_txn":{"success":[{"request_put":{"key":"YQ==","value":"MQ=="}}],"failure":[{"request_put":{"key":"YQ==","value":"Mg=="}}]}}]}' },
  { path: '/v3/kv/txn', body: '{"compare":[{"target":"CREATE","key":"YQ==","createRevision":"2"}],"success":[{"requestPut":{"key":"YQ==","value":"YmFy","prevKv":true}}]}' },
  { path: '/v3/kv/txn', body: '{"success":[{"request_put":{"key":"YQ==","value":"MQ=="}},{"request_put":{"key":"YQ==","value":"Mg=="}}]}' },
  { path: '/v3/kv/txn', body: '{"success":[{}]}' },
  { path: '/v3/kv/txn', body: '{"compare":[{"target":"VALUE","value":"MQ=="}]}' },
  // watch: events with prev_kv
  {
    stream: '/v3/watch', body: '{"create_request":{"key":"dw==","range_end":"eA==","prev_kv":true}}',
    then: [{ path: '/v3/kv/put', body: '{"key":"dw==","value":"MQ=="}' }, { path: '/v3/kv/put', body: '{"key":"dw==","value":"Mg=="}' }, { path: '/v3/kv/deleterange', body: '{"key":"dw=="}' }],
  },
  { stream: '/v3/watch', body: '{"create_request":{"key":"YQ==","watch_id":"7"}} {"create_request":{"key":"Yg==","watch_id":"7"}} {"create_request":{"key":"Yg=="}} {"create_request":{"key":"Yw=="}} {"progress_request":{}} {"cancel_request":{"watch_id":"7"}} {"cancel_request":{"watch_id":"99"}}' },
  { stream: '/v3/watch', body: '{"create_request":{"key":"Yw==","range_end":"YQ=="}}' },
  {
    stream: '/v3/watch', body: '{"create_request":{"key":"Zg==","filters":["NOPUT"]}}{"create_request":{"key":"Zg==","filters":[1]}}{"create_request":{"key":"Zg==","filters":["NOPUT","NODELETE"]}}',
    then: [{ path: '/v3/kv/put', body: '{"key":"Zg==","value":"MQ=="}' }, { path: '/v3/kv/deleterange', body: '{"key":"Zg=="}' }],
  },
  { stream: '/v3/watch', body: '{"create_request":{"key":"YQ==","start_revision":"2"}}' },
  { stream: '/v3/watch', body: 'x' },
  { stream: '/v3/watch', body: '{"create_request":{"key":"YQ=="}} x', then: [{ path: '/v3/kv/put', body: '{"key":"YQ==","value":"MQ=="}' }] },
  // compaction, then a watch from a compacted revision
  { path: '/v3/kv/compaction', body: '{"revision":"10"}' },
  { path: '/v3/kv/compaction', body: '{"revision":"10"}' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","revision":"9"}' },
  { path: '/v3/kv/compaction', body: '{}' },
  { stream: '/v3/watch', body: '{"create_request":{"key":"YQ==","start_revision":"5"}}' },
  { path: '/v3/maintenance/hash', body: '{"revision":"3"}', compare: 'keys' },
  // lease
  { path: '/v3/lease/grant', body: '{"TTL":60,"ID":"1000"}' },
  { path: '/v3/lease/grant', body: '{"TTL":60,"ID":1000}' },
  { path: '/v3/lease/grant', body: '{"TTL":"9000000001"}' },
  { path: '/v3/lease/grant', body: '{"TTL":30,"ID":"-7"}' },
  { path: '/v3/kv/put', body: '{"key":"bDE=","value":"MQ==","lease":"1000"}' },
  { path: '/v3/lease/timetolive', body: '{"ID":"1000","keys":true}' },
  { path: '/v3/kv/lease/timetolive', body: '{"ID":"4242"}' },
  { path: '/v3/lease/leases', body: '{}', topology: true },
  { path: '/v3/kv/lease/leases', body: '{}', topology: true },
  { stream: '/v3/lease/keepalive', body: '{"ID":"1000"}{"ID":"777"}' },
  { stream: '/v3/lease/keepalive', body: '{"ID":"1000"} garbage' },
  { stream: '/v3/lease/keepalive', body: 'garbage' },
  { path: '/v3/lease/revoke', body: '{"ID":"1000"}' },
  { path: '/v3/lease/revoke', body: '{"ID":"1000"}' },
  { path: '/v3/kv/lease/revoke', body: '{"ID":"-7"}' },
  { path: '/v3/kv/range', body: '{"key":"bA==","range_end":"bQ=="}' },
  // maintenance and cluster
  { path: '/v3/maintenance/status', body: '{}' },
  { path: '/v3/maintenance/alarm', body: '{}' },
  { path: '/v3/maintenance/alarm', body: '{"action":"GET"}' },
  { path: '/v3/maintenance/defragment', body: '{}' },
  { path: '/v3/maintenance/transfer-leadership', body: '{"targetID":"123"}', topology: true },
  { path: '/v3/cluster/member/list', body: '{}', topology: true },
  { stream: '/v3/maintenance/snapshot', body: '{}', readMs: 1000 },
  { stream: '/v3/maintenance/snapshot', body: '{"x":' },
  // routing
  { method: 'GET', path: '/v3/kv/range' },
  { method: 'PUT', path: '/v3/watch', body: '{}' },
  { method: 'OPTIONS', path: '/v3/kv/range' },
  { method: 'OPTIONS', path: '/anything' },
  { path: '/v3/kv/nothing', body: '{}' },
  { path: '/v3alpha/kv/range', body: '{"key":"YQ=="}' },
  { path: '/v3beta/kv/range', body: '{"key":"YQ=="}' },
  { path: '/v3beta/kv/nothing', body: '{}' },
  // lock and election
  { path: '/v3/lease/grant', body: '{"TTL":60,"ID":"7001"}' },
  { path: '/v3/lock/lock', body: '{"name":"bXlsb2Nr","lease":"7001"}' },
  { path: '/v3/lock/unlock', body: '{"key":"bXlsb2NrLzFiNTk="}' },
  { path: '/v3/lock/lock', body: '{"name":"bXlsb2Nr","lease":"424242"}' },
  { path: '/v3/lock/unlock', body: '{}' },
  { path: '/v3/lease/grant', body: '{"TTL":60,"ID":"9001"}' },
  { path: '/v3/election/campaign', body: '{"name":"ZWxlY3Q=","lease":"9001","value":"djE="}' },
  { path: '/v3/election/leader', body: '{"name":"ZWxlY3Q="}' },
  {
    stream: '/v3/election/observe', body: '{"name":"ZWxlY3Q="}',
    then: [{ path: '/v3/election/proclaim', body: '{"leader":{"name":"ZWxlY3Q=","key":"ZWxlY3QvMjMyOQ==","rev":"1","lease":"9001"},"value":"djI="}' }],
  },
  { path: '/v3/election/resign', body: '{"leader":{"name":"ZWxlY3Q=","key":"ZWxlY3QvMjMyOQ==","rev":"1","lease":"9001"}}' },
  { path: '/v3/election/leader', body: '{"name":"ZWxlY3Q="}' },
  { path: '/v3/election/proclaim', body: '{"leader":{"name":"ZWxlY3Q=","key":"ZWxlY3QvMjMyOQ==","rev":"1","lease":"9001"},"value":"djM="}' },
  { path: '/v3/election/resign', body: '{"leader":{"name":"ZWxlY3Q=","key":"bm9uZQ==","rev":"1","lease":"1"}}' },
  { path: '/v3/election/proclaim', body: '{"value":"djM="}' },
];

const VERBOSE = process.env.GATEWAY_COMPAT_VERBOSE === '1';

function render(a: Answer, compare: 'exact' | 'keys' = 'exact'): string {
  const body = compare === 'keys' ? keysOf(a.body) : normalize(a.body);
  return `${a.status} ${a.type}\n${body}`;
}

describe(`v3 gateway vs etcd 3.4${UPSTREAM_MODE ? ' (gateway mode over a 3-member etcd cluster)' : ''}`, { skip: !hasEtcd() && 'needs /usr/bin/etcd' }, () => {
  let etcd: Server;
  let ours: GatewayServer;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd({ enableV2: false }), startGateway()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.close()]);
  });

  test('the same answers, step by step', async () => {
    const mismatches: string[] = [];
    for (const [i, step] of steps.entries()) {
      const label = `#${i} ${'stream' in step ? `stream ${step.stream} ${step.body}` : `${step.method ?? 'POST'} ${step.path} ${step.body ?? ''}`}`;
      if ('stream' in step) {
        const [a, b] = [await stream(etcd.clientUrl, step), await stream(ours.url, step)];
        const want = [render(a.head), ...a.followUps.map((x) => render(x))].join('\n');
        const got = [render(b.head), ...b.followUps.map((x) => render(x))].join('\n');
        if (VERBOSE) process.stdout.write(`${label}\n${got}\n`);
        if (want !== got) mismatches.push(`${label}\n  etcd: ${want}\n  ours: ${got}`);
      } else {
        const [a, b] = [await send(etcd.clientUrl, step), await send(ours.url, step)];
        if (VERBOSE) process.stdout.write(`${label}\n${render(b, step.compare)}\n`);
        if (UPSTREAM_MODE && step.topology === true) continue;
        if (render(a, step.compare) !== render(b, step.compare)) mismatches.push(`${label}\n  etcd: ${render(a, step.compare)}\n  ours: ${render(b, step.compare)}`);
      }
    }
    assert.deepEqual(mismatches, []);
  });
});
