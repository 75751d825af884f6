// Watch coalescing in gateway mode, counted where it matters: on the real etcd cluster.
// N v2 long polls (2,000 here; LONGPOLLS=10000 for the full figure), 200 /v3/watch streams and
// 100 gRPC Watch streams on one key through our gateway must add a handful of upstream watchers (etcd's
// etcd_debugging_mvcc_watcher_total, summed over the members), not thousands; then one write
// must answer every long poll and reach every stream.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { WatchClient, WatchRequest, type WatchResponse } from '../../src/gen/etcdserverpb/rpc.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/cluster.js';
import { hasEtcd, startOurServer, type Server } from '../helpers/procs.js';

const LONGPOLLS = Number(process.env.LONGPOLLS ?? 2000);
const STREAMS = 200;
const GRPC_STREAMS = 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The gateway is our binary in its own process: the test's own sockets then do not count
// against the gateway's file descriptor limit (10,000 polls are 20,000 descriptors in one process).
let cluster: EtcdCluster;
let gw: Server;
before(async () => {
  if (!hasEtcd()) return;
  cluster = await startEtcdCluster(3);
  gw = await startOurServer({ extraArgs: ['--endpoints', cluster.endpoints] });
});
after(async () => {
  await gw?.stop();
  await cluster?.stop();
});

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
}

async function metric(name: string): Promise<number> {
  let sum = 0;
  for (const m of cluster.members) {
    const text = await (await fetch(`http://${m.endpoint}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line !== undefined, `${name} in ${m.name}'s /metrics`);
    sum += Number(line.split(' ')[1]);
  }
  return sum;
}

test(`${LONGPOLLS} v2 long polls, ${STREAMS} /v3/watch and ${GRPC_STREAMS} gRPC watch streams on one key: a handful of upstream watchers`, { skip: !hasEtcd() && 'needs /usr/bin/etcd', timeout: 180_000 }, async () => {
  const u = new URL(gw.clientUrl);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const put = await fetch(`${gw.clientUrl}/v2/keys/lp`, { method: 'PUT', body: 'value=0', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(put.status, 201);
  const watchersBefore = await metric('etcd_debugging_mvcc_watcher_total');
  const streamsBefore = await metric('etcd_debugging_mvcc_watch_stream_total');

  // The long polls: each resolves with its body once the key changes.
  let headers = 0;
  const polls: Promise<string>[] = [];
  const deadline = Date.now() + 120_000;
  for (let i = 0; i < LONGPOLLS; i++) {
    // In batches: thousands of connects at once overflow the listen backlog (resets), not the point here.
    if (i % 500 === 0) while (headers < i && Date.now() < deadline) await sleep(10);
    polls.push(new Promise((resolve, reject) => {
      const req = http.get({ host: u.hostname, port: u.port, path: '/v2/keys/lp?wait=true', agent }, (res) => {
        headers++;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => resolve(body));
      });
      req.on('error', (e) => reject(new Error(`long poll ${i} (${headers} waiting): ${String(e)}`)));
    }));
  }
  // The JSON watch streams: each counts the events it got.
  const events: number[] = new Array<number>(STREAMS).fill(0);
  const streamReqs: http.ClientRequest[] = [];
  let created = 0;
  for (let i = 0; i < STREAMS; i++) {
    const req = http.request({ host: u.hostname, port: u.port, path: '/v3/watch', method: 'POST', agent }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        for (const line of d.split('\n')) {
          if (line.includes('"created":true')) created++;
          if (line.includes('"events"')) events[i]!++;
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', () => undefined);
    req.write(JSON.stringify({ create_request: { key: Buffer.from('/v2/001/lp').toString('base64') } }));
    streamReqs.push(req);
  }
  // gRPC Watch streams (one client connection, as clientv3 multiplexes), same key.
  const grpcClient = new WatchClient(gw.endpoint, grpc.credentials.createInsecure());
  const grpcEvents: number[] = new Array<number>(GRPC_STREAMS).fill(0);
  let grpcCreated = 0;
  const grpcCalls = Array.from({ length: GRPC_STREAMS }, (_, i) => {
    const call = grpcClient.watch();
    call.on('data', (r: WatchResponse) => {
      if (r.created) grpcCreated++;
      grpcEvents[i]! += r.events.length;
    });
    call.on('error', () => undefined);
    call.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from('/v2/001/lp') } } }));
    return call;
  });
  // Every long poll is registered when its headers went out (etcd's v2 sends them at once).
  while ((headers < LONGPOLLS || created < STREAMS || grpcCreated < GRPC_STREAMS) && Date.now() < deadline) await sleep(50);
  assert.equal(headers, LONGPOLLS, 'every long poll is waiting');
  assert.equal(created, STREAMS, 'every stream is created');
  assert.equal(grpcCreated, GRPC_STREAMS, 'every gRPC watch is created');

  const watchersDuring = await metric('etcd_debugging_mvcc_watcher_total');
  const streamsDuring = await metric('etcd_debugging_mvcc_watch_stream_total');
  const added = watchersDuring - watchersBefore;
  process.stdout.write(`# upstream watchers ${watchersBefore} -> ${watchersDuring}, watch streams ${streamsBefore} -> ${streamsDuring} with ${LONGPOLLS} long polls + ${STREAMS} JSON streams + ${GRPC_STREAMS} gRPC streams; gateway rss ${await rssMiB(gw.pid)} MiB\n`);
  assert.ok(added <= 5, `upstream watchers added: ${added}`);
  assert.ok(streamsDuring - streamsBefore <= 3, `upstream watch streams added: ${streamsDuring - streamsBefore}`);
  // Our own /metrics says the same from our side.
  const ours = await (await fetch(`${gw.clientUrl}/metrics`)).text();
  const gaugeOf = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(ours)?.[1] ?? NaN);
  const upWatchers = gaugeOf('etcd_gateway_upstream_watchers');
  assert.ok(upWatchers >= 1 && upWatchers <= added + 1, `etcd_gateway_upstream_watchers ${upWatchers}, etcd counted ${added} added`);
  assert.ok(gaugeOf('etcd_gateway_upstream_watch_streams') >= 1, 'etcd_gateway_upstream_watch_streams');

  // One write answers them all.
  const t0 = Date.now();
  const put2 = await fetch(`${gw.clientUrl}/v2/keys/lp`, { method: 'PUT', body: 'value=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(put2.status, 200);
  const bodies = await Promise.all(polls);
  const ms = Date.now() - t0;
  for (const b of bodies) {
    const j = JSON.parse(b) as { action: string; node: { key: string; value: string } };
    assert.equal(j.action, 'set');
    assert.equal(j.node.value, '1');
  }
  while (events.some((n) => n === 0) && Date.now() < deadline) await sleep(20);
  while (grpcEvents.some((n) => n === 0) && Date.now() < deadline) await sleep(20);
  assert.deepEqual(new Set(events), new Set([1]), 'every stream got the one event once');
  assert.deepEqual(new Set(grpcEvents), new Set([1]), 'every gRPC watch got the one event once');
  process.stdout.write(`# all ${LONGPOLLS} long polls answered ${ms} ms after the write\n`);
  for (const r of streamReqs) r.destroy();
  for (const c of grpcCalls) c.cancel();
  grpcClient.close();
  agent.destroy();
});
