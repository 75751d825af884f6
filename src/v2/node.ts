// v2 nodes and events as plain values (rendering to etcd's JSON lives in src/http/v2/).
import type { KeyValue } from '../gen/mvccpb/kv.js';

export const v2Actions = ['get', 'set', 'create', 'update', 'compareAndSwap', 'delete', 'compareAndDelete', 'expire'] as const;
export type V2Action = (typeof v2Actions)[number];

export interface V2Node {
  /** Cleaned path; "/" for the root (rendered without a key). */
  readonly key: string;
  readonly dir: boolean;
  /** Files only; absent on delete/compareAndDelete nodes. */
  readonly value?: string;
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
}

export function kindOf(s: StoredNode): 'file' | 'dir' | 'none' {
  if (s.dir) return 'dir';
  if (s.file) return 'file';
  return 'none';
}

/** The node as v2 shows it (without children); undefined if nothing is stored. */
export function nodeOf(s: StoredNode): V2Node | undefined {
  if (s.dir) return { key: s.path, dir: true, createdIndex: Number(s.dir.createRevision), modifiedIndex: Number(s.dir.modRevision) };
  if (s.file) {
    const created = s.birth ? s.birth.modRevision : s.file.createRevision;
    return { key: s.path, dir: false, value: s.file.value.toString(), createdIndex: Number(created), modifiedIndex: Number(s.file.modRevision) };
  }
  return undefined;
}

export function headerOf(h: { revision: bigint; raftTerm: bigint; clusterId: bigint } | undefined): V2Header {
  return { index: Number(h?.revision ?? 0n), raftTerm: h?.raftTerm ?? 0n, clusterId: h?.clusterId ?? 0n };
}
