// v2 watches (GET ?wait=true) as subscriptions of backend.watch. Most are served by the shared hub
// (watch-hub.ts); openWatch here is the fallback for a start index older than the hub's ring: one
// backend watcher of its own over the whole v2 keyspace from revision waitIndex.
// Each revision is decoded into at most one v2 write (its P/event record, keys.ts) or, when it
// deletes node keys without a P/event record, into lease-expiry `expire` events; the v2 event's
// node/prevNode are read at the revision and the one before. Matching follows spec 9.3, including
// the 3.4 quirks: history hits (revision <= the index at registration) ignore hidden components and
// match a directory delete/expire by plain string prefix; a stream satisfied from history delivers
// that one event and then stays silent; a stream watching a deleted node's own path gets the event
// twice.
import type { V3Backend } from '../backend/index.js';
import { WatchCreateRequest, type WatchResponse } from '../gen/etcdserverpb/rpc.js';
import { Event_EventType, type Event } from '../gen/mvccpb/kv.js';
import { V2Error } from './errors.js';
import type { KeySchema } from './keys.js';
import { nodeOf, v2Actions, type V2Action, type V2Event, type V2Header } from './node.js';
import { readPath } from './read.js';
import { deleted, withoutTtl } from './write.js';

/** etcd v2 keeps the last 1000 events; an older waitIndex is answered with 401. */
export const HISTORY_WINDOW = 1000;

export interface WatchRequest {
  readonly path: string;
  readonly recursive: boolean;
  /** 0: from the next change. */
  readonly waitIndex: number;
  readonly stream: boolean;
}

export interface V2Watch {
  /** The header at registration (X-Etcd-Index = the current index). */
  readonly header: V2Header;
  /** Matching events, in index order; ends when the signal aborts (the backend watch is closed). */
  readonly events: AsyncGenerator<V2Event>;
}

/** What a revision says happened to one v2 node, before reading its state. */
export interface Candidate {
  readonly action: V2Action;
  readonly key: string;
  readonly dir: boolean;
  readonly rev: number;
  /** An expiry inferred from a lease revocation (checked: the node had a lease). */
  readonly inferred: boolean;
}

export const DELETES = new Set<V2Action>(['delete', 'compareAndDelete', 'expire']);

function isAction(a: unknown): a is V2Action {
  return typeof a === 'string' && a !== 'get' && (v2Actions as readonly string[]).includes(a);
}

/** The v2 writes of one revision (see keys.ts for how an expiry is told from a delete). */
export function candidatesOf(keys: KeySchema, rev: number, events: readonly Event[]): Candidate[] {
  const eventKey = keys.eventKey();
  const record = events.find((e) => e.type === Event_EventType.PUT && e.kv !== undefined && e.kv.key.equals(eventKey));
  if (record?.kv) {
    let parsed: unknown;
    try { parsed = JSON.parse(record.kv.value.toString()); } catch { return []; }
    if (typeof parsed !== 'object' || parsed === null) return [];
    const { action, key, dir, refresh } = parsed as Record<string, unknown>;
    if (!isAction(action) || typeof key !== 'string' || refresh === true) return [];
    return [{ action, key, dir: dir === true, rev, inferred: false }];
  }
  // No v2 action recorded: a v3 client wrote under the v2 schema (a put is a v2 `set`), or a
  // lease expired (a delete of a node that had a lease; eventOf tells it from a plain v3 delete).
  const out: Candidate[] = [];
  for (const e of events) {
    if (!e.kv) continue;
    const p = keys.parse(e.kv.key);
    if (!p) continue;
    if (e.type === Event_EventType.PUT) {
      if (p.kind === 'file') out.push({ action: 'set', key: p.path, dir: false, rev, inferred: false });
    } else if (p.kind === 'file' || p.kind === 'dir') {
      out.push({ action: 'expire', key: p.path, dir: p.kind === 'dir', rev, inferred: true });
    }
  }
  return out;
}

/** The v2 candidates of one watch response, revision by revision, in revision order. */
export function candidatesOfResponse(keys: KeySchema, events: readonly Event[]): { rev: number; cand: Candidate }[] {
  const revOf = (e: Event): number => Number(e.kv?.modRevision ?? 0n);
  // Watch responses come in revision order; a stable sort would keep each revision's events in
  // their order otherwise.
  let ordered = true;
  for (let i = 1; i < events.length && ordered; i++) ordered = revOf(events[i]!) >= revOf(events[i - 1]!);
  const evs = ordered ? events : [...events].sort((a, b) => revOf(a) - revOf(b));
  const out: { rev: number; cand: Candidate }[] = [];
  for (let start = 0; start < evs.length;) {
    const rev = revOf(evs[start]!);
    let end = start + 1;
    while (end < evs.length && revOf(evs[end]!) === rev) end++;
    for (const cand of candidatesOf(keys, rev, start === 0 && end === evs.length ? evs : evs.slice(start, end))) out.push({ rev, cand });
    start = end;
  }
  return out;
}

/**
 * 3.4's stream quirks, for both watch paths: a live stream watching a deleted node's own path gets
 * the event twice (the delete notifies the node's watchers, then the path's); a stream satisfied
 * from history delivers that one event, once, and then stays silent.
 */
export function streamQuirks(req: WatchRequest, c: Candidate, history: boolean): { twice: boolean; silentAfter: boolean } {
  return { twice: req.stream && !history && c.key === req.path && DELETES.has(c.action), silentAfter: req.stream && history };
}

function hiddenBelow(watched: string, key: string): boolean {
  return key.slice(watched === '/' ? 0 : watched.length).includes('/_');
}

/** Spec 9.3: does an event on c.key notify a watcher of req? (history: rev <= registration index) */
export function matches(req: WatchRequest, c: { action: V2Action; key: string; dir: boolean }, history: boolean): boolean {
  if (c.key === req.path) return true;
  if (req.recursive) {
    const inside = req.path === '/' ? c.key.startsWith('/') : c.key.startsWith(req.path + '/');
    if (inside && (history || !hiddenBelow(req.path, c.key))) return true;
  }
  if (DELETES.has(c.action) && c.dir) return history ? req.path.startsWith(c.key) : req.path.startsWith(c.key + '/');
  return false;
}

/**
 * Live, a directory's delete/expire reaches a watch strictly inside it only through the watchers
 * of the nodes the removal takes away (etcd 3.4 notifies each removed node's path): the watched
 * node must have existed just before (existedBefore). A history hit matches by prefix alone.
 * Called for a candidate that matches().
 */
export function needsPriorNode(req: WatchRequest, c: { key: string }, history: boolean): boolean {
  return !history && req.path.startsWith(c.key + '/');
}

/** Whether node `path` (a file or a directory) existed at revision rev - 1. */
export async function existedBefore(backend: V3Backend, keys: KeySchema, path: string, rev: number): Promise<boolean> {
  const t = (await readPath(backend, keys, path, rev - 1)).target;
  return t.file !== undefined || t.dir !== undefined;
}

/** The v2 event of a candidate, from the node's state at its revision and the one before. */
export async function eventOf(backend: V3Backend, keys: KeySchema, c: Candidate): Promise<V2Event | undefined> {
  const before = await readPath(backend, keys, c.key, c.rev - 1);
  const prev = nodeOf(before.target);
  let action = c.action;
  if (c.inferred) {
    const t = before.target;
    if ((t.file?.lease ?? t.ttl?.lease ?? 0n) === 0n) action = 'delete'; // a v3 delete, not an expiry
  }
  if (DELETES.has(action)) {
    if (!prev) return undefined;
    return { action, node: deleted(prev, c.rev), prevNode: action === 'expire' ? withoutTtl(prev) : prev };
  }
  const after = nodeOf((await readPath(backend, keys, c.key, c.rev)).target);
  if (!after) return undefined;
  const node = after.dir && action === 'update' ? { ...after, modifiedIndex: c.rev } : after;
  return { action, node, ...(prev && action !== 'create' ? { prevNode: prev } : {}) };
}

function cleared(req: WatchRequest, header: V2Header, from: number): V2Error {
  return new V2Error(401, `the requested history has been cleared [${from}/${req.waitIndex}]`, header.index);
}

/** Throws V2Error 401 when waitIndex is older than the history window (etcd keeps 1000 events). */
export function checkWindow(req: WatchRequest, header: V2Header): void {
  const oldest = Math.max(1, header.index - HISTORY_WINDOW + 1);
  if (req.waitIndex > 0 && req.waitIndex < oldest) throw cleared(req, header, oldest);
}

/**
 * The 401 for a waitIndex whose history compaction removed (the caller checked: revision
 * waitIndex - 1, which its event is read at, is compacted), naming the compact revision. A backend
 * watch from that revision learns it: it is refused with the compact revision, after `created`,
 * as etcd's watch reports a compacted start.
 */
export async function compactedError(backend: V3Backend, keys: KeySchema, header: V2Header, req: WatchRequest): Promise<V2Error> {
  let done!: (rev: number) => void;
  const compactRev = new Promise<number>((res) => (done = res));
  const session = backend.watch({ send(resp) { if (resp.canceled) done(Number(resp.compactRevision)); }, backlogBytes: () => 0 });
  const timer = setTimeout(() => done(0), 5_000);
  try {
    const range = keys.allRange();
    const startRevision = BigInt(Math.max(1, req.waitIndex - 1));
    session.request({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: range.key, rangeEnd: range.rangeEnd, startRevision }) } });
    const rev = await compactRev;
    return rev > 0 ? cleared(req, header, rev) : new V2Error(300, 'mvcc: required revision has been compacted', header.index);
  } finally {
    clearTimeout(timer);
    session.close();
  }
}

/** Opens a backend watch of its own; throws V2Error 401 when waitIndex is cleared or compacted. */
export async function openWatch(backend: V3Backend, keys: KeySchema, header: V2Header, req: WatchRequest, signal: AbortSignal): Promise<V2Watch> {
  const cur = header.index;
  checkWindow(req, header);

  const queue: WatchResponse[] = [];
  let wake: (() => void) | undefined;
  const session = backend.watch({ send(resp) { queue.push(resp); wake?.(); }, backlogBytes: () => 0 });
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort);
  const stop = (): void => {
    signal.removeEventListener('abort', onAbort);
    session.close();
  };
  const next = async (): Promise<WatchResponse | undefined> => {
    while (queue.length === 0) {
      if (signal.aborted) return undefined;
      await new Promise<void>((res) => (wake = res));
      wake = undefined;
    }
    return queue.shift();
  };
  const range = keys.allRange();
  const startRevision = BigInt(req.waitIndex > 0 ? req.waitIndex : cur + 1);
  session.request({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: range.key, rangeEnd: range.rangeEnd, startRevision }) } });
  // The first answer: created, or canceled because startRevision is compacted.
  const first = await next();
  if (first?.canceled) {
    stop();
    throw first.compactRevision !== 0n ? cleared(req, header, Number(first.compactRevision)) : new V2Error(300, first.cancelReason || 'watch canceled', cur);
  }
  if (first && !first.created) queue.unshift(first);

  async function* events(): AsyncGenerator<V2Event> {
    try {
      for (;;) {
        const resp = await next();
        if (!resp || resp.canceled) return;
        for (const { rev, cand: c } of candidatesOfResponse(keys, resp.events)) {
          const history = rev <= cur;
          if (!matches(req, c, history)) continue;
          if (needsPriorNode(req, c, history) && !(await existedBefore(backend, keys, req.path, rev))) continue;
          const ev = await eventOf(backend, keys, c);
          if (!ev) continue;
          const quirks = streamQuirks(req, c, history);
          yield ev;
          if (quirks.twice) yield ev;
          if (quirks.silentAfter) {
            while (await next()) { /* stays open, silent */ }
            return;
          }
        }
      }
    } finally {
      stop();
    }
  }
  return { header, events: events() };
}
