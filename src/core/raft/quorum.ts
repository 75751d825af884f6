// Majority arithmetic over the voters: the committed index and the outcome of a vote. Learners are
// never passed in here, so they never count.
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The largest index acknowledged by a majority of voters (0 for unknown voters). */
export function committedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number {
  if (voters.size === 0) return 0;
  const matches = [...voters].map(matchOf).sort((a, b) => b - a);
  return matches[quorumSize(voters.size) - 1]!;
}

/** Counts only the voters' answers: won with a majority of yes, lost with a majority of no. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = quorumSize(voters.size);
  if (granted >= q) return 'won';
  if (voters.size - rejected >= q) return 'pending';
  return 'lost';
}
