// Membership changes, one at a time: the entry payload (9 bytes: kind, node id big-endian, then
// an optional context that raft ignores and the application reads: who the member is) and the
// pure function that applies one to a configuration.
import type { ConfState, NodeId } from './types.js';

export type ConfChangeType = 'addVoter' | 'addLearner' | 'remove';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

const CODES: Record<ConfChangeType, number> = { addVoter: 1, addLearner: 2, remove: 3 };
const TYPES: readonly (ConfChangeType | undefined)[] = [undefined, 'addVoter', 'addLearner', 'remove'];

export function encodeConfChange(cc: ConfChange, context: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(9 + context.length);
  out[0] = CODES[cc.type];
  new DataView(out.buffer).setBigUint64(1, cc.nodeId);
  out.set(context, 9);
  return out;
}

/** The application's context carried after the change (empty when none). */
export function confChangeContext(data: Uint8Array): Uint8Array {
  return data.subarray(9);
}

export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  if (data.length < 9) return undefined;
  const type = TYPES[data[0]!];
  if (type === undefined) return undefined;
  const nodeId = new DataView(data.buffer, data.byteOffset, 9).getBigUint64(1);
  return nodeId === 0n ? undefined : { type, nodeId };
}

/** The configuration after cc; addVoter on a learner promotes it; adding a voter as learner is a no-op. */
export function applyConfChange(cs: ConfState, cc: ConfChange): ConfState {
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  switch (cc.type) {
    case 'addVoter':
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case 'addLearner':
      if (!voters.has(cc.nodeId)) learners.add(cc.nodeId);
      break;
    case 'remove':
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
  }
  const sorted = (s: Set<NodeId>) => [...s].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { voters: sorted(voters), learners: sorted(learners) };
}
