// A tiny synchronous network of raft nodes for scenario tests (etcd-io/raft's raft_test.go
// `network`): deliver everything until quiet, cut links, isolate nodes, filter message types.
import {
  MemoryStorage, Raft, SeededRng, setDebugChecks, type Message, type MessageType, type NodeId, type RaftConfig, type ReadState,
} from '../../src/core/raft/index.js';

// The whole-log invariant walks, off on the write path, run in every raft test.
setDebugChecks(true);

export interface TestNode {
  raft: Raft;
  readonly storage: MemoryStorage;
  readonly applied: string[];
  readonly readStates: ReadState[];
}

export class TestNet {
  readonly nodes = new Map<NodeId, TestNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly ignored = new Set<MessageType>();
  readonly delivered: Message[] = [];
  /** Messages a cut or an ignored type dropped. */
  readonly dropped: Message[] = [];

  constructor(ids: readonly NodeId[], private readonly opts: Partial<RaftConfig> = {}) {
    for (const id of ids) this.add(id, MemoryStorage.bootstrap(ids));
  }

  add(id: NodeId, storage: MemoryStorage = new MemoryStorage()): TestNode {
    const raft = new Raft({
      id, storage, electionTicks: 10, heartbeatTicks: 1, rng: new SeededRng(Number(id)),
      preVote: true, checkQuorum: true, applied: storage.snapshot().meta.index, ...this.opts,
    });
    const node: TestNode = { raft, storage, applied: [], readStates: [] };
    this.nodes.set(id, node);
    this.process(id);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  /** Persist, send, apply and advance until the node has nothing more to do. */
  process(id: NodeId): void {
    const n = this.node(id);
    for (let rd = n.raft.ready(); rd !== null; rd = n.raft.ready()) {
      if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      for (const o of rd.messages) this.queue.push(o.message);
      for (const e of rd.committedEntries) if (e.type === 'normal' && e.data.length > 0) n.applied.push(new TextDecoder().decode(e.data));
      n.readStates.push(...rd.readStates);
      n.raft.advance(rd);
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  ignore(type: MessageType): void {
    this.ignored.add(type);
  }

  recover(): void {
    this.cut.clear();
    this.ignored.clear();
  }

  /** Delivers messages until none are left (bounded). */
  stabilize(): void {
    for (let i = 0; i < 100_000 && this.queue.length > 0; i++) {
      const m = this.queue.shift()!;
      if (this.cut.has(`${m.from}>${m.to}`) || this.ignored.has(m.type)) {
        this.dropped.push(m);
        continue;
      }
      if (!this.nodes.has(m.to)) continue;
      this.delivered.push(m);
      this.raft(m.to).step(m);
      this.process(m.to);
    }
    if (this.queue.length > 0) throw new Error('network did not stabilize');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.raft(id).tick();
      this.process(id);
    }
  }

  /** Ticks every node once, then delivers everything. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.nodes.keys()) this.tick(id);
      this.stabilize();
    }
  }

  campaign(id: NodeId): void {
    this.raft(id).campaign();
    this.process(id);
    this.stabilize();
  }

  propose(id: NodeId, value: string): void {
    this.raft(id).propose(new TextEncoder().encode(value));
    this.process(id);
    this.stabilize();
  }

  leaders(): Raft[] {
    return [...this.nodes.values()].map((n) => n.raft).filter((r) => r.role === 'leader');
  }
}
