// The leader's (and candidate's) view of the configuration: voters, learners, one Progress per
// member, the votes of the current election.
import { committedIndex, voteResult, type VoteResult } from './quorum.js';
import { Progress } from './progress.js';
import type { ConfState, NodeId } from './types.js';

export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(private readonly maxInflight: number) {}

  confState(): ConfState {
    const sorted = (s: Set<NodeId>) => [...s].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return { voters: sorted(this.voters), learners: sorted(this.learners) };
  }

  /** Switches to cs; members new to it start probing from `nextIndex`. Returns the new members. */
  applyConf(cs: ConfState, nextIndex: number): NodeId[] {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    const added: NodeId[] = [];
    for (const id of [...this.progress.keys()]) if (!this.isMember(id)) this.progress.delete(id);
    for (const id of [...cs.voters, ...cs.learners]) {
      const existing = this.progress.get(id);
      if (existing) {
        existing.isLearner = this.learners.has(id);
        continue;
      }
      const pr = new Progress(0, nextIndex, this.maxInflight, this.learners.has(id));
      pr.recentActive = true; // a fresh member must not fail the next check-quorum round at once
      this.progress.set(id, pr);
      added.push(id);
    }
    return added;
  }

  isMember(id: NodeId): boolean {
    return this.voters.has(id) || this.learners.has(id);
  }

  /** `id` is the only member: the lone voter, with no learner. */
  isOnly(id: NodeId): boolean {
    return this.voters.size === 1 && this.learners.size === 0 && this.voters.has(id);
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  committed(): number {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): VoteResult {
    return voteResult(this.voters, this.votes);
  }

  /** Check quorum: a majority of voters was heard from (the leader counts itself). */
  quorumActive(self: NodeId): boolean {
    const active = new Map<NodeId, boolean>();
    for (const id of this.voters) active.set(id, id === self || (this.progress.get(id)?.recentActive ?? false));
    return voteResult(this.voters, active) === 'won';
  }
}
