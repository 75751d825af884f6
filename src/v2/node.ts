// v2 nodes and events as plain values (rendering to etcd's JSON lives in src/http/v2/).
import type { KeyValue } from '../gen/mvccpb/kv.js';
import { formatExpiration, nowNs, ttlOf } from './ttl.js';

export const v2Actions = ['get', 'set', 'create', 'update', 'compareAndSwap', 'delete', 'compareAndDelete', 'expire'] as const;
export type V2Action = (typeof v2Actions)[number];

export interface V2Node {
  /** Cleaned path; "/" for the root (rendered without a key). */
  readonly key: string;
  readonly dir: boolean;
  /** Files only; absent on delete/compareAndDelete nodes. */
  readonly value?: string;
  /** Nodes with a TTL: the expiration, RFC3339 with nanoseconds (UTC). */
  readonly expiration?: string;
  /** Nodes with a TTL: remaining seconds as etcd computes them (omitted when 0). */
  readonly ttl?: number;
  /** Directories only: listed children (absent when not listed or empty). */
  readonly nodes?: readonly V2Node[];
  /** 0 for the root (omitted when rendered). */
  readonly modifiedIndex: number;
  readonly createdIndex: number;
}

export interface V2Event {
  readonly action: V2Action;
  readonly node: V2Node;
  readonly prevNode?: V2Node;
}

/** What the edge needs from a v3 response header. */
export interface V2Header {
  /** X-Etcd-Index: the store revision the answer reflects. */
  readonly index: number;
  readonly raftTerm: bigint;
  readonly clusterId: bigint;
}

export interface V2Result {
  readonly event: V2Event;
  /** 201 for a create, or a set of a node that did not exist; 200 otherwise. */
  readonly status: 200 | 201;
  readonly header: V2Header;
}

/** The stored state of one path: its file key, directory marker and birth marker, if present. */
export interface StoredNode {
  readonly path: string;
  readonly file?: KeyValue;
  readonly dir?: KeyValue;
  readonly birth?: KeyValue;
  /** The ttl marker (value: expiration in ns since the epoch). */
  readonly ttl?: KeyValue;
}

export function kindOf(s: StoredNode): 'file' | 'dir' | 'none' {
  if (s.dir) return 'dir';
  if (s.file) return 'file';
  return 'none';
}

/** The stored expiration (ns since the epoch) of a node, if it has a TTL. */
export function expirationOf(s: StoredNode): bigint | undefined {
  if (!s.ttl) return undefined;
  const v = s.ttl.value.toString();
  return /^[0-9]+$/.test(v) ? BigInt(v) : undefined;
}

/** expiration and ttl fields for an expiration (ttl as of `now`, omitted when 0). */
export function ttlFields(exp: bigint | undefined, now: bigint = nowNs()): { expiration?: string; ttl?: number } {
  if (exp === undefined) return {};
  const ttl = ttlOf(exp, now);
  return ttl === 0 ? { expiration: formatExpiration(exp) } : { expiration: formatExpiration(exp), ttl };
}

/** The node as v2 shows it (without children); undefined if nothing is stored. */
export function nodeOf(s: StoredNode, now?: bigint): V2Node | undefined {
  const t = ttlFields(expirationOf(s), now);
  if (s.dir) return { key: s.path, dir: true, ...t, createdIndex: Number(s.dir.createRevision), modifiedIndex: Number(s.dir.modRevision) };
  if (s.file) {
    // A birth marker older than the file key is a leftover of an expired node: ignore it.
    const created = s.birth && s.birth.modRevision >= s.file.createRevision ? s.birth.modRevision : s.file.createRevision;
    return { key: s.path, dir: false, value: s.file.value.toString(), ...t, createdIndex: Number(created), modifiedIndex: Number(s.file.modRevision) };
  }
  return undefined;
}

export function headerOf(h: { revision: bigint; raftTerm: bigint; clusterId: bigint } | undefined): V2Header {
  return { index: Number(h?.revision ?? 0n), raftTerm: h?.raftTerm ?? 0n, clusterId: h?.clusterId ?? 0n };
}
