// A simulated network: every message is delayed, and may be dropped, duplicated, reordered or cut
// by a partition. All choices come from one Rng, so a seed replays the exact same schedule.
import type { Message, NodeId } from '../../src/core/raft/index.js';
import type { Rng } from '../../src/core/raft/rng.js';

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  /** Each message arrives 0..maxDelayTicks ticks after it is sent. */
  maxDelayTicks: number;
  /** In order per link (what a stream transport gives); otherwise anything may overtake anything. */
  fifo: boolean;
}

interface InFlight {
  readonly deliverAt: number;
  readonly seq: number;
  readonly message: Message;
}

export const HEALTHY: NetworkFaults = { dropRate: 0, duplicateRate: 0, maxDelayTicks: 1, fifo: true };
const IN_FLIGHT_MAX = 20_000;

export class SimNetwork {
  faults: NetworkFaults = HEALTHY;
  private queue: InFlight[] = [];
  private seq = 0;
  /** node -> partition group; nodes in different groups cannot talk. */
  private groups = new Map<NodeId, number>();
  private readonly linkLastDeliverAt = new Map<string, number>();
  stats = { sent: 0, dropped: 0, duplicated: 0, delivered: 0 };

  constructor(private readonly rng: Rng) {}

  partition(groups: readonly (readonly NodeId[])[]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((id) => this.groups.set(id, i)));
  }

  heal(): void {
    this.groups = new Map();
  }

  connected(a: NodeId, b: NodeId): boolean {
    return (this.groups.get(a) ?? 0) === (this.groups.get(b) ?? 0);
  }

  send(m: Message, now: number): void {
    this.stats.sent++;
    if (this.rng.next() < this.faults.dropRate || this.queue.length >= IN_FLIGHT_MAX) {
      this.stats.dropped++;
      return;
    }
    const copies = this.rng.next() < this.faults.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const link = `${m.from}>${m.to}`;
    for (let i = 0; i < copies; i++) {
      let deliverAt = now + this.rng.int(this.faults.maxDelayTicks + 1);
      if (this.faults.fifo) deliverAt = Math.max(deliverAt, this.linkLastDeliverAt.get(link) ?? 0);
      this.linkLastDeliverAt.set(link, deliverAt);
      this.queue.push({ deliverAt, seq: this.seq++, message: m });
    }
  }

  /** Messages due at `now`, shuffled (reordering among them), minus those a partition cuts. */
  takeDue(now: number): Message[] {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.queue) (f.deliverAt <= now ? due : later).push(f);
    this.queue = later;
    if (this.faults.fifo) {
      due.sort((a, b) => a.seq - b.seq);
    } else {
      for (let i = due.length - 1; i > 0; i--) {
        const j = this.rng.int(i + 1);
        [due[i], due[j]] = [due[j]!, due[i]!];
      }
    }
    const out: Message[] = [];
    for (const f of due) {
      if (this.connected(f.message.from, f.message.to)) out.push(f.message);
      else this.stats.dropped++;
    }
    this.stats.delivered += out.length;
    return out;
  }
}
