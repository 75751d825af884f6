// Differential test of v3 auth through the JSON gateway: the same /v3/auth/* and KV requests go to
// a fresh real etcd 3.4 and to our server, step by step, each side using the tokens it issued;
// status, Content-Type and body must match once ids, raft terms and token texts are normalised.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { hasEtcd, startRealEtcd, type Server } from '../helpers/procs.js';
import { startGateway, type GatewayServer } from './harness.js';

type Who = 'root' | 'alice';

interface Step {
  readonly path: string;
  readonly body: string;
  /** Send this user's token (as `Authorization`, or the header named by `header`). */
  readonly as?: Who;
  readonly header?: 'authorization' | 'grpc-metadata-token' | 'bearer';
  /** A literal Authorization header (a bogus token). */
  readonly authorization?: string;
  /** Keep the token this Authenticate returns for later steps. */
  readonly capture?: Who;
  /** Streams: read this long, then compare what arrived. */
  readonly streamMs?: number;
}

const steps: Step[] = [
  { path: '/v3/auth/enable', body: '{}' },
  { path: '/v3/auth/authenticate', body: '{"name":"root","password":"x"}' },
  { path: '/v3/auth/user/add', body: '{"name":"","password":"x"}' },
  { path: '/v3/auth/user/add', body: '{"name":"root","password":"rootpw"}' },
  { path: '/v3/auth/user/add', body: '{"name":"root","password":"again"}' },
  { path: '/v3/auth/enable', body: '{}' },
  { path: '/v3/auth/user/grant', body: '{"user":"root","role":"root"}' },
  { path: '/v3/auth/role/add', body: '{"name":"reader"}' },
  { path: '/v3/auth/role/add', body: '{"name":""}' },
  { path: '/v3/auth/user/add', body: '{"name":"alice","password":"apw"}' },
  { path: '/v3/auth/user/grant', body: '{"user":"alice","role":"reader"}' },
  { path: '/v3/auth/user/grant', body: '{"user":"alice","role":"nosuch"}' },
  { path: '/v3/auth/user/add', body: '{"name":"nopw","options":{"no_password":true}}' },
  { path: '/v3/auth/role/grant', body: '{"name":"reader","perm":{"permType":"READ","key":"YQ==","range_end":"Yg=="}}' },
  { path: '/v3/auth/role/grant', body: '{"name":"reader","perm":{"permType":"WRITE","key":"AA==","range_end":"AA=="}}' },
  { path: '/v3/auth/role/grant', body: '{"name":"reader","perm":{"permType":"READWRITE","key":"Yw=="}}' },
  { path: '/v3/auth/role/get', body: '{"role":"reader"}' },
  { path: '/v3/auth/role/revoke', body: '{"role":"reader","key":"AA==","range_end":"AA=="}' },
  { path: '/v3/auth/role/revoke', body: '{"role":"reader","key":"eg=="}' },
  { path: '/v3/auth/role/get', body: '{"role":"nosuch"}' },
  { path: '/v3/auth/user/get', body: '{"name":"alice"}' },
  { path: '/v3/auth/user/get', body: '{"name":"nobody"}' },
  { path: '/v3/auth/user/list', body: '{}' },
  { path: '/v3/auth/role/list', body: '{}' },
  { path: '/v3/auth/user/revoke', body: '{"name":"alice","role":"nosuch"}' },
  { path: '/v3/auth/user/changepw', body: '{"name":"alice","password":"apw2"}' },
  { path: '/v3/auth/user/changepw', body: '{"name":"nobody","password":"x"}' },
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"MQ=="}' },
  { path: '/v3/auth/enable', body: '{}' },
  { path: '/v3/auth/authenticate', body: '{"name":"root","password":"wrong"}' },
  { path: '/v3/auth/authenticate', body: '{"name":"nobody","password":"x"}' },
  { path: '/v3/auth/authenticate', body: '{"name":"nopw","password":""}' },
  { path: '/v3/auth/authenticate', body: '{"name":"root","password":"rootpw"}', capture: 'root' },
  { path: '/v3/auth/authenticate', body: '{"name":"alice","password":"apw2"}', capture: 'alice' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', authorization: 'bogus.1' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', as: 'root', header: 'bearer' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', as: 'root' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', as: 'root', header: 'grpc-metadata-token' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', as: 'alice' },
  { path: '/v3/kv/range', body: '{"key":"YQ==","range_end":"Yw=="}', as: 'alice' },
  { path: '/v3/kv/put', body: '{"key":"YQ==","value":"Mg=="}', as: 'alice' },
  { path: '/v3/kv/put', body: '{"key":"Yw==","value":"Mg=="}', as: 'alice' },
  { path: '/v3/kv/deleterange', body: '{"key":"Yw==","prev_kv":true}', as: 'alice' },
  { path: '/v3/kv/txn', body: '{"compare":[{"key":"YQ==","target":"VALUE","value":"MQ=="}],"success":[{"request_put":{"key":"Yw==","value":"Mw=="}}]}', as: 'alice' },
  { path: '/v3/kv/txn', body: '{"compare":[{"key":"Yg==","target":"VALUE","value":"MQ=="}],"success":[]}', as: 'alice' },
  { path: '/v3/auth/user/list', body: '{}', as: 'alice' },
  { path: '/v3/auth/user/get', body: '{"name":"alice"}', as: 'alice' },
  { path: '/v3/auth/role/get', body: '{"role":"reader"}', as: 'alice' },
  { path: '/v3/auth/role/get', body: '{"role":"root"}', as: 'alice' },
  { path: '/v3/maintenance/hash', body: '{}', as: 'alice' },
  { path: '/v3/maintenance/defragment', body: '{}' },
  { path: '/v3/maintenance/status', body: '{}' },
  // etcd 3.4 checks no permission on these (a token they carry must still be valid)
  { path: '/v3/kv/compaction', body: '{"revision":"2"}', as: 'alice' },
  { path: '/v3/kv/compaction', body: '{"revision":"3"}' },
  { path: '/v3/kv/compaction', body: '{"revision":"4"}', authorization: 'bogus.1' },
  { path: '/v3/cluster/member/list', body: '{}' },
  { path: '/v3/maintenance/alarm', body: '{"action":"GET"}' },
  { path: '/v3/lease/grant', body: '{"TTL":"30","ID":"9191"}', authorization: 'bogus.1' },
  { path: '/v3/lease/grant', body: '{"TTL":"30","ID":"9090"}' },
  { path: '/v3/lease/leases', body: '{}' },
  { path: '/v3/lease/revoke', body: '{"ID":"9090"}' },
  { path: '/v3/lease/revoke', body: '{"ID":"9090"}', as: 'alice' },
  { path: '/v3/watch', body: '{"create_request":{"key":"YQ=="}}', as: 'alice', streamMs: 300 },
  { path: '/v3/watch', body: '{"create_request":{"key":"eg=="}}', as: 'alice', streamMs: 300 },
  { path: '/v3/watch', body: '{"create_request":{"key":"YQ=="}}', streamMs: 300 },
  { path: '/v3/auth/user/delete', body: '{"name":"root"}', as: 'root' },
  { path: '/v3/auth/role/delete', body: '{"role":"root"}', as: 'root' },
  { path: '/v3/auth/user/revoke', body: '{"name":"root","role":"root"}', as: 'root' },
  { path: '/v3/auth/user/delete', body: '{"name":"nopw"}', as: 'root' },
  { path: '/v3/auth/user/revoke', body: '{"name":"alice","role":"reader"}', as: 'root' },
  { path: '/v3/auth/role/delete', body: '{"role":"reader"}', as: 'root' },
  { path: '/v3/auth/enable', body: '{}' },
  { path: '/v3/auth/disable', body: '{}', as: 'alice' },
  { path: '/v3/auth/disable', body: '{}', as: 'root' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}', as: 'root' },
  { path: '/v3/kv/range', body: '{"key":"YQ=="}' },
  { path: '/v3/auth/user/list', body: '{}' },
];

function normalize(text: string): string {
  return text
    .replace(/"(cluster_id|member_id|raft_term|leader|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse|hash)":"?\d+"?/g, '"$1":"N"')
    .replace(/"(peerURLs|clientURLs)":\[[^\]]*\]/g, '"$1":[U]')
    .replace(/"ID":"(\d{12,})"/g, '"ID":"MEMBER"')
    .replace(/"token":"[A-Za-z]{16}\.\d+"/g, '"token":"<SIMPLE_TOKEN>"');
}

interface Side {
  readonly url: string;
  readonly tokens: Map<Who, string>;
}

async function send(side: Side, step: Step): Promise<string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (step.authorization !== undefined) headers.authorization = step.authorization;
  if (step.as !== undefined) {
    const token = side.tokens.get(step.as);
    if (token === undefined) throw new Error(`no ${step.as} token yet`);
    if (step.header === 'grpc-metadata-token') headers['grpc-metadata-token'] = token;
    else headers.authorization = step.header === 'bearer' ? `Bearer ${token}` : token;
  }
  const ac = new AbortController();
  const res = await request(`${side.url}${step.path}`, { method: 'POST', headers, body: step.body, signal: ac.signal });
  let body = '';
  if (step.streamMs === undefined) {
    body = await res.body.text();
  } else {
    // A watch stays open: keep what arrives within the window, then hang up.
    res.body.setEncoding('utf8');
    res.body.on('data', (d: string) => { body += d; });
    res.body.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, step.streamMs));
    ac.abort();
  }
  if (step.capture !== undefined) side.tokens.set(step.capture, (JSON.parse(body) as { token: string }).token);
  return `${res.statusCode} ${String(res.headers['content-type'])}\n${normalize(body)}`;
}

describe('v3 gateway auth vs etcd 3.4', { skip: !hasEtcd() && 'needs /usr/bin/etcd' }, () => {
  let etcd: Server;
  let ours: GatewayServer;
  before(async () => {
    [etcd, ours] = await Promise.all([startRealEtcd({ enableV2: false }), startGateway()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.close()]);
  });

  test(`${steps.length} auth steps give the same answers`, async (t) => {
    const ref: Side = { url: etcd.clientUrl, tokens: new Map() };
    const us: Side = { url: ours.url, tokens: new Map() };
    const mismatches: string[] = [];
    for (const [i, step] of steps.entries()) {
      const [a, b] = await Promise.all([send(ref, step), send(us, step)]);
      const label = `#${i} ${step.path} ${step.body}${step.as === undefined ? '' : ` as ${step.as}${step.header === undefined ? '' : ` (${step.header})`}`}`;
      if (process.env.GATEWAY_COMPAT_VERBOSE === '1') t.diagnostic(`${label}\n${b}`);
      if (a !== b) mismatches.push(`${label}\n  etcd: ${a}\n  ours: ${b}`);
    }
    assert.deepEqual(mismatches, []);
  });
});
