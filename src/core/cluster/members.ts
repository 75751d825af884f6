// The replicated member list: who is in the cluster, with names, peer and client URLs. Changed
// only by applied entries (so every member agrees at every index) and kept in the MVCC storage's
// metadata with the applied index. Client URLs are learned as etcd learns them: each member
// proposes its own attributes (name, client URLs) once it runs, and everyone applies that entry.
import type { MvccStorage } from '../mvcc/storage.js';

export interface Member {
  readonly id: bigint;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

/** A change carried by a log entry (JSON in the entry; ids as hex strings). */
export type MemberChange =
  | { readonly op: 'attrs'; readonly id: string; readonly name: string; readonly clientURLs: readonly string[] }
  | { readonly op: 'add'; readonly id: string; readonly peerURLs: readonly string[]; readonly isLearner: boolean }
  | { readonly op: 'remove'; readonly id: string }
  | { readonly op: 'promote'; readonly id: string }
  | { readonly op: 'update'; readonly id: string; readonly peerURLs: readonly string[] };

const META_MEMBERS = 'members';

interface Stored {
  readonly members: { id: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }[];
  readonly removed: string[];
}

export class Membership {
  private readonly byId = new Map<bigint, Member>();
  private readonly removedIds = new Set<bigint>();

  /** Loads the stored list; undefined when the storage has none yet (a new data dir). */
  static load(storage: Pick<MvccStorage, 'getMeta'>): Membership | undefined {
    const b = storage.getMeta(META_MEMBERS);
    if (b === undefined) return undefined;
    const s = JSON.parse(b.toString()) as Stored;
    const m = new Membership();
    for (const x of s.members) m.byId.set(BigInt('0x' + x.id), { ...x, id: BigInt('0x' + x.id) });
    for (const r of s.removed) m.removedIds.add(BigInt('0x' + r));
    return m;
  }

  static of(members: readonly Member[]): Membership {
    const m = new Membership();
    for (const x of members) m.byId.set(x.id, x);
    return m;
  }

  list(): Member[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.byId.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removedIds.has(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Applies one change; false when it no longer applies (e.g. the member is gone). */
  apply(c: MemberChange): boolean {
    const id = BigInt('0x' + c.id);
    const cur = this.byId.get(id);
    switch (c.op) {
      case 'attrs':
        if (cur === undefined) return false;
        this.byId.set(id, { ...cur, name: c.name, clientURLs: [...c.clientURLs] });
        return true;
      case 'add':
        if (cur !== undefined || this.removedIds.has(id)) return false;
        this.byId.set(id, { id, name: '', peerURLs: [...c.peerURLs], clientURLs: [], isLearner: c.isLearner });
        return true;
      case 'remove':
        if (cur === undefined) return false;
        this.byId.delete(id);
        this.removedIds.add(id);
        return true;
      case 'promote':
        if (cur === undefined) return false;
        this.byId.set(id, { ...cur, isLearner: false });
        return true;
      case 'update':
        if (cur === undefined) return false;
        this.byId.set(id, { ...cur, peerURLs: [...c.peerURLs] });
        return true;
    }
  }

  /** Stages the list into storage (committed with the entry that changed it). */
  save(storage: Pick<MvccStorage, 'stage'>): void {
    const s: Stored = {
      members: this.list().map((m) => ({ id: m.id.toString(16), name: m.name, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs], isLearner: m.isLearner })),
      removed: [...this.removedIds].map((r) => r.toString(16)),
    };
    storage.stage({ t: 'meta', name: META_MEMBERS, value: Buffer.from(JSON.stringify(s)) });
  }
}
