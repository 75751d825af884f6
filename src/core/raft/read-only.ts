// ReadIndex bookkeeping on the leader: each request remembers the commit index at arrival and
// waits for a heartbeat round acknowledged by a quorum; acknowledging one request confirms all
// those queued before it.
import { invariant } from './assert.js';
import { voteResult } from './quorum.js';
import type { NodeId, ReadIndexRequest } from './types.js';

export interface ReadIndexStatus {
  readonly request: ReadIndexRequest;
  readonly index: number;
  readonly acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  private readonly pending = new Map<bigint, ReadIndexStatus>();
  private queue: bigint[] = [];

  constructor(readonly pendingMax: number) {}

  add(index: number, request: ReadIndexRequest): boolean {
    if (this.pending.has(request.ctx)) return true;
    if (this.queue.length >= this.pendingMax) return false;
    this.pending.set(request.ctx, { request, index, acks: new Map() });
    this.queue.push(request.ctx);
    return true;
  }

  /** Records id's ack of ctx; true when a quorum of voters has acknowledged it. */
  recvAck(id: NodeId, ctx: bigint, voters: ReadonlySet<NodeId>): boolean {
    const rs = this.pending.get(ctx);
    if (rs === undefined) return false;
    rs.acks.set(id, true);
    return voteResult(voters, rs.acks) === 'won';
  }

  /** Removes and returns every request up to and including ctx. */
  advance(ctx: bigint): ReadIndexStatus[] {
    const at = this.queue.indexOf(ctx);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1).map((c) => {
      const rs = this.pending.get(c);
      invariant(rs !== undefined, 'read-only queue and map disagree');
      this.pending.delete(c);
      return rs;
    });
    this.queue = this.queue.slice(at + 1);
    return done;
  }

  lastPendingCtx(): bigint | undefined {
    return this.queue[this.queue.length - 1];
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
