// Raft's safety properties (Figure 3 of the paper), checked after every simulation step, plus
// ReadIndex linearizability. A violation throws with enough context to start debugging.
import type { Entry, NodeId, Raft } from '../../src/core/raft/index.js';

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

function fail(message: string): never {
  throw new InvariantViolation(message);
}

function entryKey(e: Entry): string {
  return `${e.type}:${Buffer.from(e.data).toString('hex')}`;
}

interface Committed {
  readonly term: number;
  readonly key: string;
  /** The lowest leader term at which this index was seen committed. */
  commitTerm: number;
}

export class Checker {
  /** Election safety: term -> the one leader. */
  private readonly leaders = new Map<number, NodeId>();
  /** Leaders already checked for completeness at election: "term/id". */
  private readonly checkedLeaders = new Set<string>();
  /** Log matching: "index/term" -> entry content and the term of the entry before it. */
  private readonly entries = new Map<string, { key: string; prevTerm: number | undefined }>();
  private readonly committed = new Map<number, Committed>();
  private maxCommitted = 0;
  /** State machine safety: index -> hash chain after applying it. */
  private readonly appliedHash = new Map<number, number>();
  private readonly readFloor = new Map<bigint, number>();
  checks = 0;
  readsChecked = 0;

  /** Called after every step, for every live node. */
  observe(nodes: ReadonlyMap<NodeId, Raft>): void {
    this.checks++;
    for (const [id, r] of nodes) {
      if (r.role !== 'leader') continue;
      const prev = this.leaders.get(r.term);
      if (prev !== undefined && prev !== id) fail(`election safety: ${prev} and ${id} both leaders of term ${r.term}`);
      this.leaders.set(r.term, id);
      this.recordCommit(r);
      const key = `${r.term}/${id}`;
      if (!this.checkedLeaders.has(key)) {
        this.checkedLeaders.add(key);
        for (const i of this.committed.keys()) this.checkHas(r, i);
      }
    }
  }

  private recordCommit(leader: Raft): void {
    let changed = false;
    // Indexes known committed, now seen committed by a leader of a lower term (a late ack).
    for (let i = Math.min(leader.log.committed, this.maxCommitted); i > 0; i--) {
      const c = this.committed.get(i);
      if (c === undefined || c.commitTerm <= leader.term) break;
      c.commitTerm = leader.term;
      changed = true;
    }
    for (let i = Math.max(this.maxCommitted + 1, leader.log.firstIndex()); i <= leader.log.committed; i++) {
      const e = leader.log.slice(i, i + 1);
      if (e === 'compacted' || e[0] === undefined) continue;
      this.committed.set(i, { term: e[0].term, key: entryKey(e[0]), commitTerm: leader.term });
      changed = true;
    }
    this.maxCommitted = Math.max(this.maxCommitted, leader.log.committed);
    if (changed) for (const term of this.leaders.keys()) if (term > leader.term) this.pendingLaterLeaders.add(term);
  }

  private readonly pendingLaterLeaders = new Set<number>();

  /** Leader completeness: every entry committed at a lower term is in this leader's log. */
  private checkHas(r: Raft, i: number): void {
    const c = this.committed.get(i);
    if (c === undefined || c.commitTerm >= r.term || i < r.log.firstIndex()) return;
    const t = r.log.term(i);
    if (t !== c.term) {
      fail(`leader completeness: leader ${r.id} of term ${r.term} has ${t ?? 'nothing'}/${i}, committed ${c.term}/${i} at term ${c.commitTerm}`);
    }
  }

  /** Re-checks current leaders of later terms against all commits (after a late commit). */
  checkLateCommits(nodes: ReadonlyMap<NodeId, Raft>): void {
    if (this.pendingLaterLeaders.size === 0) return;
    this.pendingLaterLeaders.clear();
    for (const r of nodes.values()) if (r.role === 'leader') for (const i of this.committed.keys()) this.checkHas(r, i);
  }

  /** Log matching, incrementally: every (index, term) ever written has one content and one predecessor term. */
  observeAppended(r: Raft, entries: readonly Entry[]): void {
    for (const e of entries) {
      const prevTerm = e.index - 1 >= r.log.firstIndex() ? r.log.term(e.index - 1) : undefined;
      const k = `${e.index}/${e.term}`;
      const seen = this.entries.get(k);
      if (seen === undefined) {
        this.entries.set(k, { key: entryKey(e), prevTerm });
        continue;
      }
      if (seen.key !== entryKey(e)) fail(`log matching: two different entries ${k} (node ${r.id})`);
      if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
        fail(`log matching: entry ${k} follows term ${prevTerm} on node ${r.id}, term ${seen.prevTerm} elsewhere`);
      }
    }
  }

  /** Log matching, in full: two logs that agree on an (index, term) agree on every entry before it. */
  checkLogsMatch(nodes: ReadonlyMap<NodeId, Raft>): void {
    const rafts = [...nodes.values()];
    for (let a = 0; a < rafts.length; a++) {
      for (let b = a + 1; b < rafts.length; b++) {
        const x = rafts[a]!;
        const y = rafts[b]!;
        const lo = Math.max(x.log.firstIndex(), y.log.firstIndex());
        const hi = Math.min(x.log.lastIndex(), y.log.lastIndex());
        let agreeing = false;
        for (let i = hi; i >= lo; i--) {
          const tx = x.log.term(i);
          const ty = y.log.term(i);
          if (tx === ty) agreeing = true;
          else if (agreeing) fail(`log matching: nodes ${x.id} and ${y.id} agree at a later index but differ at ${i} (${tx} vs ${ty})`);
        }
      }
    }
  }

  /** State machine safety: no two nodes apply different entries at one index. */
  observeApplied(id: NodeId, e: Entry, hashAfter: number): void {
    const seen = this.appliedHash.get(e.index);
    if (seen === undefined) this.appliedHash.set(e.index, hashAfter);
    else if (seen !== hashAfter) fail(`state machine safety: node ${id} applied a different history at index ${e.index}`);
    const c = this.committed.get(e.index);
    if (c !== undefined && (c.term !== e.term || c.key !== entryKey(e))) {
      fail(`state machine safety: node ${id} applied ${e.term}/${e.index}, but ${c.term}/${e.index} was committed`);
    }
  }

  observeRestored(id: NodeId, index: number, hash: number): void {
    const seen = this.appliedHash.get(index);
    if (seen !== undefined && seen !== hash) fail(`state machine safety: node ${id} restored a snapshot at ${index} with a different history`);
    if (seen === undefined) this.appliedHash.set(index, hash);
  }

  /** A read starting now must see every entry committed anywhere so far. */
  readStarted(ctx: bigint, nodes: ReadonlyMap<NodeId, Raft>): void {
    let floor = 0;
    for (const r of nodes.values()) floor = Math.max(floor, r.log.committed);
    this.readFloor.set(ctx, floor);
  }

  readDone(id: NodeId, ctx: bigint, index: number): void {
    const floor = this.readFloor.get(ctx);
    if (floor === undefined) fail(`read ${ctx} answered on ${id} but never asked`);
    if (index < floor) fail(`linearizability: read ${ctx} on ${id} got index ${index}, but ${floor} was committed before it started`);
    this.readsChecked++;
  }
}
