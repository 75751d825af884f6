// One line of text per message, entry and Ready: for traces, logs and failing simulations.
import { assertNever } from './assert.js';
import type { Entry, Message, Ready } from './types.js';

export function describeEntry(e: Entry): string {
  const kind = e.type === 'normal' ? '' : ' conf';
  return `${e.term}/${e.index}${kind}${e.data.length > 0 ? ` ${e.data.length}B` : ' empty'}`;
}

function entries(list: readonly Entry[]): string {
  return list.length === 0 ? '' : ` [${list.map(describeEntry).join(', ')}]`;
}

export function describe(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'vote':
    case 'preVote':
      return `${head} last=${m.lastTerm}/${m.lastIndex}${m.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${head}${m.reject ? ' rejected' : ' granted'}`;
    case 'append':
      return `${head} prev=${m.prevTerm}/${m.prevIndex} commit=${m.commit}${entries(m.entries)}`;
    case 'appendResponse':
      return m.reject
        ? `${head} rejected index=${m.index} hint=${m.hintTerm}/${m.hintIndex}`
        : `${head} index=${m.index}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.ctx === undefined ? '' : ` ctx=${m.ctx}`}`;
    case 'heartbeatResponse':
      return `${head}${m.ctx === undefined ? '' : ` ctx=${m.ctx}`}`;
    case 'snapshot': {
      const s = m.snapshot.meta;
      return `${head} snapshot=${s.term}/${s.index} voters=[${s.voters.join(',')}] learners=[${s.learners.join(',')}]`;
    }
    case 'propose':
      return `${head}${entries(m.entries)}`;
    case 'readIndex':
      return `${head} ctx=${m.ctx}`;
    case 'readIndexResponse':
      return `${head} ctx=${m.ctx} index=${m.index}`;
    case 'timeoutNow':
      return head;
    case 'transferLeader':
      return `${head} transferee=${m.transferee}`;
    default:
      return assertNever(m);
  }
}

export function describeReady(rd: Ready): string {
  const parts: string[] = [];
  if (rd.softState) parts.push(`soft: ${rd.softState.role} lead=${rd.softState.lead}`);
  if (rd.hardState) parts.push(`hard: term=${rd.hardState.term} vote=${rd.hardState.vote} commit=${rd.hardState.commit}`);
  if (rd.snapshot) parts.push(`snapshot: ${rd.snapshot.meta.term}/${rd.snapshot.meta.index}`);
  if (rd.entries.length > 0) parts.push(`entries:${entries(rd.entries)}`);
  if (rd.committedEntries.length > 0) parts.push(`committed:${entries(rd.committedEntries)}`);
  for (const o of rd.messages) parts.push(`${o.afterPersist ? 'after-persist ' : ''}msg: ${describe(o.message)}`);
  for (const r of rd.readStates) parts.push(`read: index=${r.index} ctx=${r.ctx}`);
  return parts.join('\n');
}
