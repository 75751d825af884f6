// The v3election service over any V3Backend, as etcd's electionServer runs clientv3's Election:
// candidates put "<name>/<lease hex>"; the oldest creator leads.
import type { RecipeBackend } from './backend.js';
import { EtcdError } from '../backend/errors.js';
import { Compare_CompareResult, Compare_CompareTarget, type Compare } from '../gen/etcdserverpb/rpc.js';
import { Event_EventType } from '../gen/mvccpb/kv.js';
import type { KeyValue } from '../gen/mvccpb/kv.js';
import type {
  CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse,
  ResignRequest, ResignResponse,
} from '../gen/v3electionpb/v3election.js';
import { prefixEnd } from '../util/bytes.js';
import { sessionLease } from './lock.js';
import { createIfAbsent, firstCreated, sessionKey, waitDeletes } from './mutex.js';
import { watchStream } from './watch-until.js';

const prefixOf = (name: Buffer): Buffer => Buffer.concat([name, Buffer.from('/')]);

function createdAt(key: Buffer, rev: bigint): Compare {
  return { key, rangeEnd: Buffer.alloc(0), target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, targetUnion: { $case: 'createRevision', value: rev } };
}

async function proclaimAs(backend: RecipeBackend, leader: LeaderKey, value: Buffer): Promise<ProclaimResponse> {
  const resp = await backend.txn({
    compare: [createdAt(leader.key, leader.rev)],
    success: [{ request: { $case: 'requestPut', value: { key: leader.key, value, lease: leader.lease, prevKv: false, ignoreValue: false, ignoreLease: false } } }],
    failure: [],
  });
  if (!resp.succeeded) throw new EtcdError('electionNotLeader');
  return { header: resp.header };
}

async function resignAs(backend: RecipeBackend, leader: LeaderKey): Promise<ResignResponse> {
  const resp = await backend.txn({
    compare: [createdAt(leader.key, leader.rev)],
    success: [{ request: { $case: 'requestDeleteRange', value: { key: leader.key, rangeEnd: Buffer.alloc(0), prevKv: false } } }],
    failure: [],
  });
  return { header: resp.header };
}

export async function campaign(backend: RecipeBackend, req: CampaignRequest, signal: AbortSignal): Promise<CampaignResponse> {
  const lease = await sessionLease(backend, req.lease);
  const prefix = prefixOf(req.name);
  const key = sessionKey(prefix, lease);
  const resp = await createIfAbsent(backend, key, req.value, lease);
  const leader: LeaderKey = { name: req.name, key, rev: resp.header!.revision, lease };
  if (!resp.succeeded) {
    const r = resp.responses[0]?.response;
    const kv = r?.$case === 'responseRange' ? r.value.kvs[0] : undefined;
    if (kv !== undefined) {
      leader.rev = kv.createRevision;
      if (!kv.value.equals(req.value)) {
        try {
          await proclaimAs(backend, leader, req.value);
        } catch (e) {
          await resignAs(backend, leader).catch(() => undefined);
          throw e;
        }
      }
    }
  }
  try {
    await waitDeletes(backend, prefix, leader.rev - 1n, signal);
  } catch (e) {
    if (signal.aborted) await resignAs(backend, leader).catch(() => undefined);
    throw e;
  }
  return { header: resp.header, leader };
}

export function proclaim(backend: RecipeBackend, req: ProclaimRequest): Promise<ProclaimResponse> {
  if (req.leader === undefined) throw new EtcdError('electionNoLeaderField');
  return proclaimAs(backend, req.leader, req.value);
}

export function resign(backend: RecipeBackend, req: ResignRequest): Promise<ResignResponse> {
  if (req.leader === undefined) throw new EtcdError('electionNoLeaderField');
  return resignAs(backend, req.leader);
}

export async function leader(backend: RecipeBackend, req: LeaderRequest): Promise<LeaderResponse> {
  const { header, kv } = await firstCreated(backend, prefixOf(req.name));
  if (kv === undefined) throw new EtcdError('electionNoLeader');
  return { header, kv };
}

/** The current leader, then one response per change of its value or per new leader. */
export async function* observe(backend: RecipeBackend, req: LeaderRequest, signal: AbortSignal): AsyncGenerator<LeaderResponse> {
  const prefix = prefixOf(req.name);
  for (;;) {
    const first = await firstCreated(backend, prefix);
    let kv: KeyValue | undefined = first.kv;
    let header = first.header!;
    if (kv === undefined) {
      const start = header.revision;
      for await (const wr of watchStream(backend, { key: prefix, rangeEnd: prefixEnd(prefix), startRevision: start }, signal)) {
        const put = wr.events.find((ev) => ev.type === Event_EventType.PUT);
        if (put?.kv !== undefined) {
          kv = put.kv;
          header = { ...wr.header!, revision: kv.modRevision };
          break;
        }
      }
    }
    if (kv === undefined) return;
    yield { header, kv };
    let deleted = false;
    for await (const wr of watchStream(backend, { key: kv.key, startRevision: header.revision + 1n }, signal)) {
      for (const ev of wr.events) {
        if (ev.type === Event_EventType.DELETE) {
          deleted = true;
          break;
        }
        yield { header: wr.header, kv: ev.kv };
      }
      if (deleted) break;
    }
  }
}
