// Scenario tests of the raft core, each tied to a rule of the Raft paper (§ numbers) or thesis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStorage, Raft, SeededRng, type Entry, type Message } from '../../src/core/raft/index.js';
import { TestNet } from './harness.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('§5.2: a node elected by campaign leads, and the others follow at its term', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  assert.equal(net.raft(1n).role, 'leader');
  for (const id of [2n, 3n]) {
    assert.equal(net.raft(id).lead, 1n);
    assert.equal(net.raft(id).term, net.raft(1n).term);
  }
  net.propose(2n, 'forwarded'); // a follower forwards proposals to the leader
  for (const id of [1n, 2n, 3n]) assert.deepEqual(net.node(id).applied, ['forwarded']);
});

test('§5.4.1: a voter rejects a candidate whose log is less up to date', () => {
  const net = new TestNet([1n, 2n, 3n], { preVote: false, checkQuorum: false });
  net.campaign(1n);
  net.isolate(3n);
  net.propose(1n, 'a'); // 3 misses it
  net.recover();
  const votesFor3: Message[] = [];
  net.campaign(3n);
  for (const m of net.delivered) if (m.type === 'voteResponse' && m.to === 3n) votesFor3.push(m);
  assert.ok(votesFor3.length >= 2);
  assert.ok(votesFor3.every((m) => m.type === 'voteResponse' && m.reject), 'both voters have a longer log');
  assert.notEqual(net.raft(3n).role, 'leader');
});

test('thesis §9.6: pre-vote keeps a partitioned node from disrupting a stable leader', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  const term = net.raft(1n).term;
  net.isolate(3n);
  net.tick(3n, 50); // many election timeouts: pre-votes fail, the term never moves
  assert.equal(net.raft(3n).term, term);
  assert.equal(net.raft(3n).role, 'preCandidate');
  net.recover();
  net.campaign(3n); // rejoins and tries again: the others are in the leader's lease
  net.tickAll(3);
  assert.equal(net.raft(1n).role, 'leader');
  assert.equal(net.raft(1n).term, term);
  assert.equal(net.raft(3n).lead, 1n);
});

test('§5.4.2 (Figure 8): a leader commits an old-term entry only through an entry of its own term', () => {
  const storage = MemoryStorage.bootstrap([1n, 2n, 3n]);
  const old: Entry[] = [
    { term: 1, index: 2, type: 'normal', data: enc('t1') },
    { term: 2, index: 3, type: 'normal', data: enc('t2') },
  ];
  storage.append(old);
  storage.setHardState({ term: 2, vote: 0n, commit: 1 });
  const r = new Raft({ id: 1n, storage, electionTicks: 10, heartbeatTicks: 1, rng: new SeededRng(1), preVote: false, checkQuorum: false });
  const drain = () => { for (let rd = r.ready(); rd; rd = r.ready()) { storage.append(rd.entries); r.advance(rd); } };
  r.campaign();
  drain();
  r.step({ type: 'voteResponse', from: 2n, to: 1n, term: 3, reject: false });
  drain();
  assert.equal(r.role, 'leader');
  assert.equal(r.log.lastIndex(), 4); // the leader's empty entry of term 3
  const ack = (index: number): Message => ({ type: 'appendResponse', from: 2n, to: 1n, term: 3, index, reject: false, hintIndex: 0, hintTerm: 0 });
  r.step(ack(3));
  drain();
  assert.equal(r.log.committed, 1, 'a majority holds index 3 (term 2), yet it must not commit by counting');
  r.step(ack(4));
  drain();
  assert.equal(r.log.committed, 4, 'the term-3 entry commits, and everything before it with it');
});

test('thesis §6.2 check-quorum: a leader cut off from the majority steps down; the majority elects another', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.isolate(1n);
  net.tick(1n, 20); // a full check-quorum round without hearing from anyone
  assert.equal(net.raft(1n).role, 'follower');
  for (let i = 0; i < 40 && net.leaders().length === 0; i++) net.tickAll();
  const [leader] = net.leaders();
  assert.ok(leader && leader.id !== 1n);
  net.recover();
  net.tickAll(5);
  assert.equal(net.raft(1n).lead, leader.id, 'the old leader follows the new one at its term');
  assert.equal(net.raft(1n).term, leader.term);
});

test('a follower told its leader\'s process is gone ends the lease now: a new leader within one election timeout', () => {
  const electedAfter = (reportGone: boolean): number => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(1n); // killed: nothing from it any more
    if (reportGone) for (const id of [2n, 3n]) net.raft(id).reportPeerGone(1n);
    for (let ticks = 1; ticks <= 40; ticks++) {
      for (const id of [2n, 3n]) net.tick(id);
      net.stabilize();
      if (net.leaders().some((r) => r.id !== 1n)) return ticks;
    }
    return Infinity;
  };
  const waited = electedAfter(false);
  const told = electedAfter(true);
  assert.ok(waited >= 10, `without the report, not before the lease (10 ticks) runs out: ${waited}`);
  assert.ok(told <= 10, `with it, within the randomized part of the timeout: ${told}`);
  assert.ok(told < waited);
});

test('a leader told a follower\'s process is gone probes it instead of streaming appends to it', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.propose(1n, 'a');
  assert.match(net.raft(1n).status().progress.get(3n)!, /^replicate /);
  net.isolate(3n);
  net.raft(1n).reportPeerGone(3n);
  net.raft(1n).reportPeerGone(2n); // not gone, but the call itself only changes how 2 is sent to
  assert.match(net.raft(1n).status().progress.get(3n)!, /^probe /);
  const appendsTo = (id: bigint, list: readonly Message[]): number => list.filter((m) => m.type === 'append' && m.to === id && m.entries.length > 0).length;
  const before = appendsTo(2n, net.delivered);
  for (const v of ['b', 'c', 'd']) net.propose(1n, v);
  assert.equal(appendsTo(2n, net.delivered) - before, 3, 'the live follower gets each entry as it comes');
  assert.equal(appendsTo(3n, net.dropped), 1, 'the gone one gets one probe, then nothing until it answers');
  for (const id of [1n, 2n]) assert.deepEqual(net.node(id).applied, ['a', 'b', 'c', 'd'], 'a quorum without 3 commits');
  net.recover();
  net.tickAll(3); // a heartbeat answer from 3: it catches up, and is replicated to again
  assert.deepEqual(net.node(3n).applied, ['a', 'b', 'c', 'd']);
  assert.match(net.raft(1n).status().progress.get(3n)!, /^replicate /);
});

test('proposals made before the leader\'s next Ready reach each follower in one append (up to maxEntriesPerAppend), in order', () => {
  const net = new TestNet([1n, 2n, 3n], { maxEntriesPerAppend: 4 });
  net.campaign(1n);
  net.propose(1n, 'a');
  const leader = net.raft(1n);
  const values = ['b', 'c', 'd', 'e', 'f', 'g'];
  for (const v of values) leader.propose(new TextEncoder().encode(v));
  assert.match(leader.status().progress.get(2n)!, / inflight=2$/, 'six proposals: two appends in flight (4 + 2 entries), not six');
  const sent = net.delivered.length;
  net.process(1n);
  net.stabilize();
  const appends = net.delivered.slice(sent).filter((m): m is Extract<Message, { type: 'append' }> => m.type === 'append' && m.to === 2n && m.entries.length > 0);
  assert.deepEqual(appends.map((m) => m.entries.length), [4, 2]);
  assert.deepEqual(appends.flatMap((m) => m.entries.map((e) => new TextDecoder().decode(e.data))), values);
  assert.equal(appends[1]!.prevIndex, appends[0]!.prevIndex + 4, 'the second starts where the first ends');
  for (const id of [1n, 2n, 3n]) assert.deepEqual(net.node(id).applied, ['a', ...values]);
});

test('a report about a live leader that others still hear from changes nothing (their lease refuses)', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  const term = net.raft(1n).term;
  net.raft(2n).reportPeerGone(1n); // wrong: 1 is alive, and 3 hears from it
  net.raft(3n).reportPeerGone(2n); // not 3's leader: ignored
  for (let i = 0; i < 10; i++) { net.tick(2n); net.stabilize(); }
  assert.equal(net.raft(2n).role, 'preCandidate', '2 campaigned, and its pre-vote was refused');
  assert.equal(net.raft(1n).role, 'leader');
  assert.equal(net.raft(1n).term, term, 'the term never moved');
  net.tickAll(2);
  assert.equal(net.raft(2n).lead, 1n, '2 follows 1 again at its first heartbeat');
  assert.equal(net.raft(2n).term, term);
});

test('thesis §3.10 leader transfer: the transferee catches up, gets timeoutNow and wins at once', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.isolate(3n);
  net.propose(1n, 'x');
  net.recover();
  const term = net.raft(1n).term;
  net.raft(1n).transferLeadership(3n); // 3 lags: gets the entries first
  net.process(1n);
  net.stabilize();
  assert.equal(net.raft(3n).role, 'leader');
  assert.equal(net.raft(3n).term, term + 1);
  assert.equal(net.raft(1n).lead, 3n);
  assert.ok(net.delivered.some((m) => m.type === 'timeoutNow' && m.to === 3n));
  net.propose(1n, 'y');
  assert.deepEqual(net.node(2n).applied, ['x', 'y']);
});

test('§7: a follower that needs compacted entries gets a snapshot, restores it and catches up', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.isolate(3n);
  for (let i = 0; i < 10; i++) net.propose(1n, `e${i}`);
  const leader = net.node(1n);
  const applied = leader.raft.log.applied;
  leader.storage.createSnapshot(applied, leader.raft.confState(), enc('state'));
  leader.storage.compact(applied);
  net.recover();
  net.tickAll(3);
  assert.ok(net.delivered.some((m) => m.type === 'snapshot' && m.to === 3n));
  const follower = net.node(3n);
  assert.equal(follower.storage.snapshot().meta.index, applied);
  assert.deepEqual(follower.storage.snapshot().data, enc('state'));
  net.propose(1n, 'after');
  assert.deepEqual(follower.applied, ['after'], 'entries after the snapshot are applied normally');
  assert.equal(follower.raft.log.committed, leader.raft.log.committed);
});

test('§6 membership: add a learner (no vote, no quorum), promote it, then remove a voter', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.add(4n);
  net.raft(1n).proposeConfChange({ type: 'addLearner', nodeId: 4n });
  net.process(1n);
  net.stabilize();
  net.tickAll(2); // the joiner gets the bootstrap snapshot
  assert.deepEqual(net.raft(1n).confState(), { voters: [1n, 2n, 3n], learners: [4n] });
  net.propose(1n, 'a');
  assert.deepEqual(net.node(4n).applied, ['a']);
  net.tick(4n, 100);
  assert.equal(net.raft(4n).role, 'follower', 'a learner never campaigns');

  // Learners do not count for quorum: with 2 and 3 cut off, nothing commits even though 4 acks.
  net.isolate(2n);
  net.isolate(3n);
  const commit = net.raft(1n).log.committed;
  net.propose(1n, 'stuck');
  assert.equal(net.raft(1n).log.committed, commit);
  net.recover();
  net.tickAll(1);
  assert.deepEqual(net.node(4n).applied, ['a', 'stuck']);

  net.raft(1n).proposeConfChange({ type: 'addVoter', nodeId: 4n });
  net.process(1n);
  net.stabilize();
  net.tickAll(1);
  assert.deepEqual(net.raft(4n).confState(), { voters: [1n, 2n, 3n, 4n], learners: [] });

  net.raft(1n).proposeConfChange({ type: 'remove', nodeId: 3n });
  net.process(1n);
  net.stabilize();
  net.tickAll(1);
  assert.deepEqual(net.raft(1n).confState(), { voters: [1n, 2n, 4n], learners: [] });
  net.isolate(3n); // removed: the rest commit without it
  net.propose(2n, 'b');
  for (const id of [1n, 2n, 4n]) assert.deepEqual(net.node(id).applied, ['a', 'stuck', 'b']);
});

test('only one conf change may be pending: a second one before the first applies becomes a no-op', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  const r = net.raft(1n);
  r.proposeConfChange({ type: 'addLearner', nodeId: 4n });
  r.proposeConfChange({ type: 'addLearner', nodeId: 5n }); // before anything applied
  net.process(1n);
  net.stabilize();
  assert.deepEqual(r.confState().learners, [4n]);
});

test('a leader removed from the configuration steps down', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.raft(1n).proposeConfChange({ type: 'remove', nodeId: 1n });
  net.process(1n);
  net.stabilize();
  assert.notEqual(net.raft(1n).role, 'leader');
  net.isolate(1n);
  for (let i = 0; i < 40 && net.leaders().length === 0; i++) net.tickAll();
  assert.ok(net.leaders().some((r) => r.id === 2n || r.id === 3n));
});

test('ReadIndex: a read state only after a heartbeat quorum confirms leadership; followers forward', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.propose(1n, 'a');
  const commit = net.raft(1n).log.committed;
  net.isolate(1n);
  net.raft(1n).readIndex(7n);
  net.process(1n);
  net.stabilize();
  assert.deepEqual(net.node(1n).readStates, [], 'no quorum answered the heartbeat');
  net.recover();
  net.tick(1n); // the next heartbeat carries the pending read's ctx
  net.stabilize();
  assert.deepEqual(net.node(1n).readStates, [{ index: commit, ctx: 7n }]);

  net.raft(2n).readIndex(8n);
  net.process(2n);
  net.stabilize();
  assert.deepEqual(net.node(2n).readStates, [{ index: commit, ctx: 8n }]);
});

test('a restarted node keeps its term, vote and log, and loses nothing it acknowledged', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  net.propose(1n, 'a');
  const before = net.raft(2n);
  const storage = net.node(2n).storage;
  net.nodes.delete(2n);
  const again = net.add(2n, storage);
  assert.equal(again.raft.term, before.term);
  assert.equal(again.raft.vote, before.vote);
  assert.equal(again.raft.log.lastIndex(), before.log.lastIndex());
  assert.equal(again.raft.log.committed, before.log.committed);
});
