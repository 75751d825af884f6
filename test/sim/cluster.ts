// N real raft nodes in one process, driven tick by tick over a SimNetwork from one seed. Each
// node's MemoryStorage is what survives a crash; a restart rebuilds Raft and the app from it.
import {
  describe as describeMessage, MemoryStorage, Raft, setDebugChecks, type NodeId, type Ready,
} from '../../src/core/raft/index.js';
import { SeededRng, type Rng } from '../../src/core/raft/rng.js';
import { SimApp } from './app.js';
import { Checker, InvariantViolation } from './checker.js';
import { HEALTHY, SimNetwork } from './network.js';
import type { SimParams } from './params.js';

// The simulator checks safety: it runs with the whole-log invariant walks the write path skips.
setDebugChecks(true);

const TRACE_LINES_MAX = 20_000;

export class SimCluster {
  readonly ids: NodeId[];
  readonly rafts = new Map<NodeId, Raft>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly apps = new Map<NodeId, SimApp>();
  readonly network: SimNetwork;
  readonly checker = new Checker();
  readonly trace: string[] = [];
  /** Proposed value -> the index where it was first applied. */
  readonly appliedAt = new Map<string, number>();
  now = 0;
  faulty = true;
  private readonly rng: Rng;
  private readonly rootRng: SeededRng;
  private starts = 0;
  private nextCtx = 1n;
  private proposalSeq = 0;
  stats = { crashes: 0, midReadyCrashes: 0, restarts: 0, partitions: 0, proposals: 0, reads: 0, transfers: 0, snapshots: 0 };

  constructor(readonly params: SimParams) {
    this.rootRng = new SeededRng(params.seed);
    this.rng = this.rootRng.fork('schedule');
    this.network = new SimNetwork(this.rootRng.fork('network'));
    this.network.faults = { dropRate: params.dropRate, duplicateRate: params.duplicateRate, maxDelayTicks: params.maxDelayTicks, fifo: params.fifo };
    this.ids = Array.from({ length: params.nodes }, (_, i) => BigInt(i + 1));
    for (const id of this.ids) {
      this.storages.set(id, MemoryStorage.bootstrap(this.ids));
      this.startNode(id);
    }
  }

  log(line: string): void {
    this.trace.push(`[${this.now}] ${line}`);
    if (this.trace.length > TRACE_LINES_MAX * 2) this.trace.splice(0, this.trace.length - TRACE_LINES_MAX);
  }

  startNode(id: NodeId): void {
    const storage = this.storages.get(id)!;
    const snap = storage.snapshot();
    this.apps.set(id, new SimApp(snap.meta.index, snap.data));
    const raft = new Raft({
      id, storage, applied: snap.meta.index, rng: this.rootRng.fork(`node-${id}-${this.starts++}`),
      electionTicks: this.params.electionTicks, heartbeatTicks: this.params.heartbeatTicks,
      preVote: this.params.preVote, checkQuorum: this.params.checkQuorum,
      maxInflight: this.params.maxInflight, maxEntriesPerAppend: this.params.maxEntriesPerAppend,
      logger: (line) => this.log(line),
    });
    this.rafts.set(id, raft);
    this.log(`start ${id}: term=${raft.term} commit=${raft.log.committed} last=${raft.log.lastIndex()}`);
    this.processReady(id);
  }

  crash(id: NodeId): void {
    this.rafts.delete(id);
    this.log(`crash ${id}`);
  }

  /** Drains a node's Ready batches, in the order the Ready contract prescribes. */
  processReady(id: NodeId): void {
    for (;;) {
      const raft = this.rafts.get(id);
      if (raft === undefined) return;
      const rd = raft.ready();
      if (rd === null) return;
      this.handleReady(id, raft, rd);
    }
  }

  private handleReady(id: NodeId, raft: Raft, rd: Ready): void {
    const storage = this.storages.get(id)!;
    const app = this.apps.get(id)!;
    for (const o of rd.messages) if (!o.afterPersist) this.send(o.message);
    if (this.faulty && (rd.entries.length > 0 || rd.hardState) && this.rng.next() < this.params.midReadyCrashRate * 0.05) {
      // Crash before the write lands: this Ready's entries and hard state are lost.
      this.stats.midReadyCrashes++;
      this.log(`crash ${id} before persisting ${rd.entries.length} entries`);
      this.rafts.delete(id);
      return;
    }
    if (rd.snapshot) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    this.checker.observeAppended(raft, rd.entries);
    for (const o of rd.messages) if (o.afterPersist) this.send(o.message);
    if (rd.snapshot) {
      app.restore(rd.snapshot.meta.index, rd.snapshot.data);
      this.checker.observeRestored(id, rd.snapshot.meta.index, app.hash);
    }
    for (const e of rd.committedEntries) {
      app.apply(e);
      if (e.type === 'normal' && e.data.length > 0) {
        const v = new TextDecoder().decode(e.data);
        if (!this.appliedAt.has(v)) this.appliedAt.set(v, e.index);
      }
      this.checker.observeApplied(id, e, app.hash);
    }
    for (const rs of rd.readStates) this.checker.readDone(id, rs.ctx, rs.index);
    raft.advance(rd);
    const snapIndex = storage.snapshot().meta.index;
    if (app.appliedIndex - snapIndex >= this.params.snapshotEvery) {
      storage.createSnapshot(app.appliedIndex, raft.confState(), app.snapshotData());
      storage.compact(Math.max(snapIndex, app.appliedIndex - this.rng.int(3)));
      this.stats.snapshots++;
    }
  }

  private send(m: Parameters<SimNetwork['send']>[0]): void {
    this.log(`send ${describeMessage(m)}`);
    this.network.send(m, this.now);
  }

  private check(): void {
    this.checker.observe(this.rafts);
    this.checker.checkLateCommits(this.rafts);
  }

  /** One round: faults, client requests, a tick on every live node, then due messages. */
  round(): void {
    this.now++;
    if (this.faulty) this.injectFaults();
    this.client();
    for (const id of this.shuffled([...this.rafts.keys()])) {
      const raft = this.rafts.get(id);
      if (raft === undefined || (this.faulty && this.rng.next() < 0.03)) continue; // clock skew: a missed tick
      raft.tick();
      this.processReady(id);
      this.check();
    }
    for (const m of this.network.takeDue(this.now)) {
      const raft = this.rafts.get(m.to);
      if (raft === undefined) continue;
      raft.step(m);
      this.processReady(m.to);
      this.check();
    }
    if (this.now % 25 === 0) this.checker.checkLogsMatch(this.rafts);
  }

  private injectFaults(): void {
    const p = this.params;
    const live = [...this.rafts.keys()];
    const down = this.ids.filter((id) => !this.rafts.has(id));
    if (live.length > 0 && this.rng.next() < p.crashRate) {
      this.stats.crashes++;
      this.crash(live[this.rng.int(live.length)]!);
    }
    if (down.length > 0 && this.rng.next() < p.restartRate) {
      this.stats.restarts++;
      this.startNode(down[this.rng.int(down.length)]!);
    }
    if (this.rng.next() < p.partitionRate) {
      const groups: NodeId[][] = [[], []];
      for (const id of this.ids) groups[this.rng.int(2)]!.push(id);
      this.network.partition(groups);
      this.stats.partitions++;
      this.log(`partition [${groups[0]!.join(',')}] | [${groups[1]!.join(',')}]`);
    } else if (this.rng.next() < p.healRate) {
      this.network.heal();
    }
    if (this.rng.next() < p.transferRate) {
      const leader = [...this.rafts.values()].find((r) => r.role === 'leader');
      if (leader) {
        const to = this.ids[this.rng.int(this.ids.length)]!;
        this.stats.transfers++;
        this.log(`client: transfer leadership ${leader.id} -> ${to}`);
        leader.transferLeadership(to);
        this.processReady(leader.id);
      }
    }
  }

  private client(): void {
    const live = [...this.rafts.keys()];
    if (live.length === 0) return;
    if (this.faulty && this.rng.next() < this.params.proposeRate) this.propose(live[this.rng.int(live.length)]!);
    if (this.rng.next() < this.params.readRate) {
      const id = live[this.rng.int(live.length)]!;
      if (!this.rafts.has(id)) return; // crashed while proposing
      const ctx = this.nextCtx++;
      this.checker.readStarted(ctx, this.rafts);
      this.stats.reads++;
      this.rafts.get(id)!.readIndex(ctx);
      this.processReady(id);
    }
  }

  propose(id: NodeId): string {
    const value = `v${this.proposalSeq++}`;
    const raft = this.rafts.get(id);
    if (raft === undefined) return value;
    const result = raft.propose(new TextEncoder().encode(value));
    this.stats.proposals++;
    this.log(`client: propose ${value} at ${id}: ${result}`);
    this.processReady(id);
    this.check();
    return value;
  }

  /** Ends the faults: every node up, no partition, no loss. */
  heal(): void {
    this.faulty = false;
    this.network.heal();
    // Raft's timing requirement: broadcast time well below the election timeout.
    this.network.faults = { ...HEALTHY, maxDelayTicks: Math.min(this.params.maxDelayTicks, Math.floor(this.params.electionTicks / 5)) };
    for (const id of this.ids) if (!this.rafts.has(id)) this.startNode(id);
    this.log('heal');
  }

  /** The leader every node follows, at one term, not handing over leadership; or undefined. */
  agreedLeader(): Raft | undefined {
    const rafts = [...this.rafts.values()];
    const leader = rafts.find((r) => r.role === 'leader');
    if (leader === undefined || rafts.length !== this.ids.length || leader.status().leadTransferee !== 0n) return undefined;
    return rafts.every((r) => r.term === leader.term && r.lead === leader.id) ? leader : undefined;
  }

  private shuffled<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }

  fail(message: string): never {
    const status = [...this.rafts.values()].map((r) => {
      const st = r.status();
      const prs = [...st.progress].map(([id, p]) => `${id}: ${p}`).join('; ');
      return `${st.id} ${st.role} t${st.term} lead=${st.lead} commit=${st.commit} applied=${st.applied} last=${st.lastIndex} first=${r.log.firstIndex()}${prs ? ` {${prs}}` : ''}`;
    });
    throw new InvariantViolation(`${message}\n${status.join('\n')}`);
  }
}
