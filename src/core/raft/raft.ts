// The raft state machine (Ongaro & Ousterhout, and etcd-io/raft's shape): no I/O, no clock. Time
// arrives as tick(), peers' messages as step(), and everything to do comes back from ready():
// entries to persist, messages to send, committed entries to apply. One step function per role,
// swapped on every role change.
import { assertNever, invariant } from './assert.js';
import { applyConfChange, decodeConfChange, encodeConfChange, type ConfChange } from './confchange.js';
import { describe } from './describe.js';
import { RaftLog } from './log.js';
import { ReadOnly } from './read-only.js';
import type { Rng } from './rng.js';
import type { Storage } from './storage.js';
import type { Progress } from './progress.js';
import { ProgressTracker } from './tracker.js';
import {
  NONE, type AppendResponse, type ConfState, type Entry, type HardState, type Message, type NodeId,
  type OutboundMessage, type Propose, type ReadIndexRequest, type ReadState, type Ready, type Role,
  type Snapshot, type SoftState,
} from './types.js';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Ticks without a leader before campaigning; the actual timeout is randomized in [n, 2n). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly rng: Rng;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxInflight?: number;
  readonly maxEntriesPerAppend?: number;
  readonly maxPendingReads?: number;
  /** The index the application's state already reflects (its snapshot); entries after it are applied again. */
  readonly applied?: number;
  /** Receives one line per notable event; silent by default. */
  readonly logger?: (line: string) => void;
}

export type ProposeResult = 'accepted' | 'forwarded' | 'dropped';

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly lead: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly leadTransferee: NodeId;
  readonly progress: ReadonlyMap<NodeId, string>;
}

const EMPTY = new Uint8Array(0);

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;

  private readonly trk: ProgressTracker;
  private readonly readOnly: ReadOnly;
  private readonly cfg: Required<Omit<RaftConfig, 'logger'>> & Pick<RaftConfig, 'logger'>;
  private msgs: Message[] = [];
  /**
   * Per peer, where in msgs its last message sits when that is an append (not handed out by
   * ready() yet): more entries for that peer grow it instead of queueing another append.
   */
  private readonly openAppend = new Map<NodeId, number>();
  /** Entry arrays growOpenAppend made (no one else holds them until ready() hands them out). */
  private grownEntries = new WeakSet<readonly Entry[]>();
  private msgsAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  /** ReadIndex requests held until the leader has committed an entry of its term. */
  private pendingReadIndex: ReadIndexRequest[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId = NONE;
  /** Leader: a conf change at or below this index is not yet applied; no second one until it is. */
  private pendingConfIndex = 0;
  private isLearner = false;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private readyOut = false;

  private stepRole: (m: Message) => void = (m) => this.stepFollower(m);
  private tickRole: () => void = () => this.tickElection();

  constructor(config: RaftConfig) {
    invariant(config.id !== NONE, 'node id 0 is reserved');
    invariant(config.heartbeatTicks > 0 && config.electionTicks > config.heartbeatTicks, 'need electionTicks > heartbeatTicks > 0');
    this.cfg = { maxInflight: 64, maxEntriesPerAppend: 64, maxPendingReads: 1024, applied: 0, ...config };
    this.id = config.id;
    this.log = new RaftLog(config.storage);
    this.trk = new ProgressTracker(this.cfg.maxInflight);
    this.readOnly = new ReadOnly(this.cfg.maxPendingReads);
    const { hardState, confState } = config.storage.initialState();
    invariant(hardState.commit >= this.log.committed && hardState.commit <= this.log.lastIndex(),
      () => `hard state commit ${hardState.commit} out of [${this.log.committed}, ${this.log.lastIndex()}]`);
    this.log.committed = hardState.commit;
    if (this.cfg.applied > this.log.applied) this.log.appliedTo(this.cfg.applied);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.switchToConfig(confState);
    this.becomeFollower(this.term, NONE);
    this.prevHardState = hardState;
    this.prevSoftState = { lead: this.lead, role: this.role };
  }

  // ---- the API --------------------------------------------------------------------------------

  tick(): void {
    this.tickRole();
  }

  propose(data: Uint8Array): ProposeResult {
    return this.proposeEntry({ term: 0, index: 0, type: 'normal', data });
  }

  proposeConfChange(cc: ConfChange, context?: Uint8Array): ProposeResult {
    return this.proposeEntry({ term: 0, index: 0, type: 'confChange', data: encodeConfChange(cc, context) });
  }

  /** Asks for a linearizable read point; the answer comes back as a ReadState with this ctx. */
  readIndex(ctx: bigint): void {
    this.step({ type: 'readIndex', from: this.id, to: this.id, term: 0, ctx });
  }

  transferLeadership(transferee: NodeId): void {
    this.step({ type: 'transferLeader', from: this.id, to: this.id, term: 0, transferee });
  }

  /** Starts an election now (as an election timeout would). */
  campaign(): void {
    this.hup(false);
  }

  /**
   * The transport found `id`'s process gone (its peer port refuses connections).
   *
   * A leader stops streaming appends to it (etcd's ReportUnreachable): a follower it replicated to
   * optimistically goes back to probing, one append per heartbeat answer, until it answers again.
   *
   * A follower whose leader that is stops honouring the leader's lease now instead of an election
   * timeout after the last heartbeat: it grants (pre-)votes at once and campaigns after its
   * randomized part of the timeout. Safety does not depend on it (only liveness does: a candidate
   * still needs a quorum of votes, and members still hearing from a live leader refuse within
   * their lease); reads are ReadIndex rounds, never lease reads, so no leader answers from a
   * lease. True when the lease ended here.
   */
  reportPeerGone(id: NodeId): boolean {
    if (this.role === 'leader') {
      const pr = this.trk.progress.get(id);
      if (id !== this.id && pr?.state === 'replicate') {
        this.trace(`follower ${id.toString(16)} is gone: probing it`);
        pr.becomeProbe();
      }
      return false;
    }
    if (this.role !== 'follower' || this.lead !== id || this.electionElapsed >= this.cfg.electionTicks) return false;
    this.trace(`leader ${id.toString(16)} is gone: its lease ends now`);
    this.electionElapsed = this.cfg.electionTicks;
    return true;
  }

  /** Snapshot delivery failed (the transport knows): probe the follower again. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.trk.progress.get(id);
    if (this.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.probeSent = true; // wait for the next heartbeat answer before probing
  }

  confState(): ConfState {
    return this.trk.confState();
  }

  /** This node is the only member (a lone voter, no learner): no peer ever needs its log. */
  isOnlyMember(): boolean {
    return this.trk.isOnly(this.id);
  }

  /** A leader's view of how far a member's log matches its own (undefined: not leader / unknown). */
  matchOf(id: NodeId): number | undefined {
    if (this.role !== 'leader') return undefined;
    return this.trk.progress.get(id)?.match;
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, string>();
    if (this.role === 'leader') for (const [id, pr] of this.trk.progress) progress.set(id, pr.describe());
    return {
      id: this.id, role: this.role, term: this.term, vote: this.vote, lead: this.lead,
      commit: this.log.committed, applied: this.log.applied, lastIndex: this.log.lastIndex(),
      leadTransferee: this.leadTransferee, progress,
    };
  }

  hasReady(): boolean {
    return this.msgs.length > 0 || this.msgsAfterPersist.length > 0 || this.readStates.length > 0
      || this.log.unstable.entries.length > 0 || this.log.unstable.snapshot !== undefined
      || this.log.hasNextCommittedEntries() || this.hardStateChanged() || this.softStateChanged();
  }

  /** The next batch of work, or null. Call advance(ready) before asking again. */
  ready(): Ready | null {
    invariant(!this.readyOut, 'ready() called again before advance()');
    if (!this.hasReady()) return null;
    const messages: OutboundMessage[] = [
      ...this.msgs.map((message) => ({ message, afterPersist: false })),
      ...this.msgsAfterPersist.map((message) => ({ message, afterPersist: true })),
    ];
    const rd: Ready = {
      softState: this.softStateChanged() ? { lead: this.lead, role: this.role } : undefined,
      hardState: this.hardStateChanged() ? this.hardState() : undefined,
      snapshot: this.log.unstable.snapshot,
      entries: this.log.unstableEntries(),
      committedEntries: this.log.nextCommittedEntries(),
      messages,
      readStates: this.readStates,
    };
    this.msgs = [];
    this.openAppend.clear();
    this.grownEntries = new WeakSet();
    this.msgsAfterPersist = [];
    this.readStates = [];
    if (rd.softState) this.prevSoftState = rd.softState;
    this.readyOut = true;
    return rd;
  }

  /** Everything in rd is done: persisted, sent, applied. */
  advance(rd: Ready): void {
    invariant(this.readyOut, 'advance() without ready()');
    this.readyOut = false;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) this.log.stableSnapTo(rd.snapshot.meta.index);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) this.log.stableTo(lastEntry.index, lastEntry.term);
    for (const e of rd.committedEntries) {
      if (e.type !== 'confChange') continue;
      const cc = decodeConfChange(e.data);
      if (cc !== undefined) this.switchToConfig(applyConfChange(this.trk.confState(), cc));
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) this.log.appliedTo(lastApplied.index);
    if (this.role === 'leader') {
      // The leader counts its own log for quorum only once it is durable.
      const self = this.trk.progress.get(this.id);
      if (self && self.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit()) this.afterCommitAdvanced();
    }
  }

  // ---- step: the entry for every message --------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // local message (or a forwarded proposal/read/transfer): no term logic
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTicks;
        if (inLease && !m.transfer) {
          // Raft thesis §4.2.3: a node hearing from a live leader ignores disruptive candidates.
          this.trace(`ignored ${describe(m)} within the leader lease`);
          return;
        }
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResponse' && !m.reject)) {
        // a pre-vote is for a future term: it changes nothing here
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'heartbeat' || m.type === 'append')) {
        // A stale leader (e.g. back from a partition) learns the new term from this answer.
        this.send({ type: 'appendResponse', from: this.id, to: m.from, term: this.term, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      const canVote = this.vote === m.from
        || (this.vote === NONE && this.lead === NONE)
        || (m.type === 'preVote' && m.term > this.term);
      const responseType = m.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
      if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
        this.trace(`granted ${describe(m)}`);
        this.send({ type: responseType, from: this.id, to: m.from, term: m.term, reject: false });
        if (m.type === 'vote') {
          this.electionElapsed = 0;
          this.vote = m.from;
        }
      } else {
        this.trace(`rejected ${describe(m)} (vote=${this.vote} last=${this.log.lastTerm()}/${this.log.lastIndex()})`);
        this.send({ type: responseType, from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }
    this.stepRole(m);
  }

  // ---- roles ----------------------------------------------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.cfg.rng.int(this.cfg.electionTicks);
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      pr.match = id === this.id ? this.log.stableLastIndex() : 0;
      pr.next = last + 1;
      pr.becomeProbe();
      pr.next = last + 1;
      pr.recentActive = id === this.id;
    }
    this.pendingConfIndex = 0;
    this.readOnly.reset();
    this.pendingReadIndex = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.stepRole = (m) => this.stepFollower(m);
    this.tickRole = () => this.tickElection();
    this.trace(`became follower at term ${term}${lead === NONE ? '' : `, leader ${lead}`}`);
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become pre-candidate');
    // No term change, no vote: a pre-candidate disturbs nobody until it can win.
    this.trk.resetVotes();
    this.lead = NONE;
    this.role = 'preCandidate';
    this.stepRole = (m) => this.stepCandidate(m);
    this.tickRole = () => this.tickElection();
    this.trace(`became pre-candidate at term ${this.term}`);
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.stepRole = (m) => this.stepCandidate(m);
    this.tickRole = () => this.tickElection();
    this.trace(`became candidate at term ${this.term}`);
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.stepRole = (m) => this.stepLeader(m);
    this.tickRole = () => this.tickHeartbeat();
    this.trk.progress.get(this.id)?.becomeReplicate();
    // Conf changes in the uncommitted tail may be pending: allow none until they are applied.
    this.pendingConfIndex = this.log.lastIndex();
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: EMPTY }]);
    this.trace(`became leader at term ${this.term}`);
  }

  private promotable(): boolean {
    return this.trk.voters.has(this.id) && !this.isLearner && this.log.unstable.snapshot === undefined;
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    for (const e of this.log.nextCommittedEntries()) {
      if (e.type === 'confChange') {
        this.trace('not campaigning: a committed conf change is not applied yet');
        return;
      }
    }
    this.startCampaign(this.cfg.preVote && !transfer ? 'preVote' : 'vote', transfer);
  }

  private startCampaign(kind: 'vote' | 'preVote', transfer: boolean): void {
    let term: number;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // single-voter cluster
      if (kind === 'preVote') this.startCampaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.trk.voters) {
      if (id === this.id) continue;
      this.send({ type: kind, from: this.id, to: id, term, lastIndex, lastTerm, transfer });
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---- ticks ----------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        if (!this.trk.quorumActive(this.id)) {
          this.trace('stepping down: no quorum heard from within an election timeout');
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.trk.progress) pr.recentActive = id === this.id;
      }
      if (this.leadTransferee !== NONE) {
        this.trace(`leader transfer to ${this.leadTransferee} timed out`);
        this.leadTransferee = NONE;
      }
    }
    for (const [id, pr] of this.trk.progress) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks >= this.cfg.electionTicks) {
        this.trace(`snapshot to ${id} not acknowledged in time: probing again`);
        pr.becomeProbe();
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingCtx());
    }
  }

  // ---- per-role step functions ------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'propose':
        this.leaderPropose(m);
        return;
      case 'readIndex':
        this.leaderReadIndex(m);
        return;
      case 'transferLeader':
        this.leaderTransfer(m.transferee);
        return;
      case 'appendResponse':
        this.leaderAppendResponse(m);
        return;
      case 'heartbeatResponse':
        this.leaderHeartbeatResponse(m.from, m.ctx);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Another leader at our own term cannot exist (election safety).
        invariant(false, () => `leader ${this.id} at term ${this.term} got ${describe(m)}`);
        return;
      case 'vote':
      case 'preVote':
      case 'voteResponse':
      case 'preVoteResponse':
      case 'readIndexResponse':
      case 'timeoutNow':
        return;
      default:
        assertNever(m);
    }
  }

  private stepCandidate(m: Message): void {
    const myResponse = this.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
    switch (m.type) {
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m.from, m.commit, m.ctx);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m.from, m.snapshot);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        if (m.type !== myResponse) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.startCampaign('vote', false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case 'propose':
      case 'readIndex':
      case 'transferLeader':
        this.trace(`dropped ${describe(m)}: no leader`);
        return;
      case 'vote':
      case 'preVote':
      case 'appendResponse':
      case 'heartbeatResponse':
      case 'readIndexResponse':
      case 'timeoutNow':
        return;
      default:
        assertNever(m);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'propose':
      case 'readIndex':
      case 'transferLeader':
        if (this.lead === NONE) {
          this.trace(`dropped ${describe(m)}: no leader`);
          return;
        }
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m.from, m.commit, m.ctx);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m.from, m.snapshot);
        return;
      case 'timeoutNow':
        this.trace(`timeoutNow from ${m.from}: campaigning at once`);
        this.hup(true);
        return;
      case 'readIndexResponse':
        this.readStates.push({ index: m.index, ctx: m.ctx });
        return;
      case 'vote':
      case 'preVote':
      case 'voteResponse':
      case 'preVoteResponse':
      case 'appendResponse':
      case 'heartbeatResponse':
        return;
      default:
        assertNever(m);
    }
  }

  // ---- follower handlers ------------------------------------------------------------------------

  private handleAppend(m: Extract<Message, { type: 'append' }>): void {
    const reply = (index: number, reject: boolean, hintIndex = 0, hintTerm = 0): void =>
      this.send({ type: 'appendResponse', from: this.id, to: m.from, term: this.term, index, reject, hintIndex, hintTerm });
    if (m.prevIndex < this.log.committed) {
      reply(this.log.committed, false);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      reply(lastNew, false);
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    reply(m.prevIndex, true, hint.index, hint.term);
  }

  private handleHeartbeat(from: NodeId, commit: number, ctx: bigint | undefined): void {
    this.log.commitTo(commit);
    this.send({ type: 'heartbeatResponse', from: this.id, to: from, term: this.term, ctx });
  }

  private handleSnapshot(from: NodeId, s: Snapshot): void {
    const restored = this.restore(s);
    this.trace(`${restored ? 'restored' : 'ignored'} snapshot ${s.meta.term}/${s.meta.index} from ${from}`);
    const index = restored ? this.log.lastIndex() : this.log.committed;
    this.send({ type: 'appendResponse', from: this.id, to: from, term: this.term, index, reject: false, hintIndex: 0, hintTerm: 0 });
  }

  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    invariant(this.role === 'follower', 'only a follower restores a snapshot');
    // A joiner may not be in the snapshot's configuration yet: the conf change adding it follows
    // in the log. Without membership it cannot campaign, so restoring is harmless.
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the snapshot's last entry: just fast-forward the commit index.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.trk.progress.clear();
    this.switchToConfig({ voters: s.meta.voters, learners: s.meta.learners });
    return true;
  }

  // ---- leader handlers --------------------------------------------------------------------------

  private proposeEntry(e: Entry): ProposeResult {
    const before = this.role;
    const lead = this.lead;
    if (this.role !== 'leader' && this.lead === NONE) return 'dropped';
    const lastBefore = this.log.lastIndex();
    this.step({ type: 'propose', from: this.id, to: this.id, term: 0, entries: [e] });
    if (before !== 'leader') return lead === NONE ? 'dropped' : 'forwarded';
    return this.log.lastIndex() > lastBefore ? 'accepted' : 'dropped';
  }

  private leaderPropose(m: Propose): void {
    invariant(m.entries.length > 0, 'empty proposal');
    if (!this.trk.progress.has(this.id)) {
      this.trace('dropped proposal: this leader was removed from the configuration');
      return;
    }
    if (this.leadTransferee !== NONE) {
      this.trace(`dropped proposal: transferring leadership to ${this.leadTransferee}`);
      return;
    }
    const entries = m.entries.map((e, i): Entry => {
      if (e.type !== 'confChange') return e;
      if (this.pendingConfIndex > this.log.applied) {
        this.trace(`ignoring conf change: one is pending until ${this.pendingConfIndex} applies`);
        return { ...e, type: 'normal', data: EMPTY };
      }
      this.pendingConfIndex = this.log.lastIndex() + i + 1;
      return e;
    });
    this.appendEntries(entries);
    this.bcastAppend();
  }

  private appendEntries(ents: readonly Entry[]): void {
    const last = this.log.lastIndex();
    const term = this.term;
    this.log.append(ents.map((e, i): Entry => ({ term, index: last + 1 + i, type: e.type, data: e.data })));
  }

  private leaderReadIndex(m: ReadIndexRequest): void {
    if (this.trk.isSingleton()) {
      this.respondToRead(m, this.log.committed);
      return;
    }
    if (this.log.term(this.log.committed) !== this.term) {
      // Until an entry of this term commits, our commit index may be behind the cluster's.
      this.pendingReadIndex.push(m);
      return;
    }
    if (!this.readOnly.add(this.log.committed, m)) {
      this.trace(`dropped read ${m.ctx}: too many pending reads`);
      return;
    }
    if (this.readOnly.recvAck(this.id, m.ctx, this.trk.voters)) this.releaseReads(m.ctx);
    else this.bcastHeartbeat(m.ctx);
  }

  private respondToRead(m: ReadIndexRequest, index: number): void {
    if (m.from === this.id) this.readStates.push({ index, ctx: m.ctx });
    else this.send({ type: 'readIndexResponse', from: this.id, to: m.from, term: this.term, ctx: m.ctx, index });
  }

  private releaseReads(ctx: bigint): void {
    for (const rs of this.readOnly.advance(ctx)) this.respondToRead(rs.request, rs.index);
  }

  private leaderTransfer(transferee: NodeId): void {
    const pr = this.trk.progress.get(transferee);
    if (pr === undefined || pr.isLearner || transferee === this.id) return;
    if (this.leadTransferee === transferee) return;
    this.leadTransferee = transferee;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    this.trace(`transferring leadership to ${transferee}`);
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  private leaderAppendResponse(m: AppendResponse): void {
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      let probe = m.hintIndex;
      if (m.hintTerm > 0) probe = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, probe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case 'replicate':
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) this.afterCommitAdvanced();
    else if (wasPaused) this.sendAppend(m.from);
    while (this.maybeSendAppend(m.from, false)) { /* fill the in-flight window */ }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.trace(`${m.from} caught up: sending timeoutNow`);
      this.sendTimeoutNow(m.from);
    }
  }

  private leaderHeartbeatResponse(from: NodeId, ctx: bigint | undefined): void {
    const pr = this.trk.progress.get(from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(from);
    if (ctx === undefined) return;
    if (this.readOnly.recvAck(from, ctx, this.trk.voters)) this.releaseReads(ctx);
  }

  private maybeCommit(): boolean {
    return this.log.maybeCommit(this.trk.committed(), this.term);
  }

  /** The commit index moved: tell the followers, and serve reads held for the first commit. */
  private afterCommitAdvanced(): void {
    if (this.log.term(this.log.committed) === this.term && this.pendingReadIndex.length > 0) {
      const held = this.pendingReadIndex;
      this.pendingReadIndex = [];
      for (const m of held) this.leaderReadIndex(m);
    }
    this.bcastAppend();
  }

  private bcastAppend(): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(ctx: bigint | undefined): void {
    for (const [id, pr] of this.trk.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, ctx });
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends the next append (or a snapshot when the entries are compacted); false when nothing went. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined) return false;
    const grown = this.growOpenAppend(to, pr);
    if (grown >= 0) return grown > 0 || sendIfEmpty;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.cfg.maxEntriesPerAppend);
    if (entries !== 'compacted' && entries.length === 0 && !sendIfEmpty) return false;
    if (prevTerm === undefined || entries === 'compacted') {
      if (!pr.recentActive) return false;
      const snapshot = this.log.snapshot();
      invariant(snapshot.meta.index >= prevIndex || snapshot.meta.index + 1 >= this.log.firstIndex(), 'no snapshot covers compacted entries');
      this.trace(`sending snapshot ${snapshot.meta.term}/${snapshot.meta.index} to ${to} (${pr.describe()})`);
      pr.becomeSnapshot(snapshot.meta.index);
      this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
      return true;
    }
    const last = entries[entries.length - 1];
    this.send({ type: 'append', from: this.id, to, term: this.term, prevIndex, prevTerm, entries, commit: this.log.committed });
    if (pr.state === 'replicate' && entries.length > 0) this.openAppend.set(to, this.msgs.length - 1);
    pr.sentEntries(entries.length, last?.index ?? prevIndex);
    return true;
  }

  /**
   * Puts the entries a replicating follower is due into the append to it that is still waiting in
   * msgs (one append per Ready instead of one per proposal: fewer messages, fewer acks, fewer
   * in-flight slots), with the current commit index. Returns the entries added, or -1 when there
   * is no such append or it is full and more entries are due (a new append must go).
   */
  private growOpenAppend(to: NodeId, pr: Progress): number {
    const at = this.openAppend.get(to);
    if (at === undefined) return -1;
    const open = this.msgs[at];
    if (open?.type !== 'append' || open.term !== this.term || pr.state !== 'replicate') return -1;
    const end = open.prevIndex + open.entries.length;
    if (pr.next !== end + 1 || pr.inflights.last() !== end) return -1;
    const lastIndex = this.log.lastIndex();
    const room = this.cfg.maxEntriesPerAppend - open.entries.length;
    if (room <= 0 && lastIndex > end) return -1;
    const more = lastIndex > end ? this.log.slice(end + 1, lastIndex + 1, room) : [];
    if (more === 'compacted') return -1;
    let entries = open.entries;
    if (more.length > 0) {
      // The array is this Ready's own after the first growth: later ones push onto it.
      if (this.grownEntries.has(entries)) (entries as Entry[]).push(...more);
      else this.grownEntries.add((entries = [...entries, ...more]));
    }
    this.msgs[at] = { ...open, entries, commit: this.log.committed };
    if (more.length > 0) pr.grewLastAppend(end + more.length);
    return more.length;
  }

  // ---- configuration ----------------------------------------------------------------------------

  private switchToConfig(cs: ConfState): void {
    const added = this.trk.applyConf(cs, this.log.lastIndex() + 1);
    this.isLearner = this.trk.learners.has(this.id);
    this.trace(`configuration: voters=[${cs.voters.join(',')}] learners=[${cs.learners.join(',')}]`);
    if (this.role !== 'leader') return;
    if (!this.trk.voters.has(this.id)) {
      this.trace('removed from the voters: stepping down');
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) this.leadTransferee = NONE;
    for (const id of added) {
      const pr = this.trk.progress.get(id);
      if (pr) pr.next = this.log.lastIndex() + 1;
    }
    if (this.maybeCommit()) this.afterCommitAdvanced();
    else for (const id of added) this.sendAppend(id);
  }

  // ---- output -----------------------------------------------------------------------------------

  private send(m: Message): void {
    invariant(m.to !== this.id || m.type === 'readIndexResponse', () => `message to self: ${describe(m)}`);
    // Votes and acks promise something about durable state (a vote, a term, the log): they leave
    // only after this Ready is persisted. So do vote requests: the candidate voted for itself.
    const durable = m.type === 'vote' || m.type === 'voteResponse' || m.type === 'appendResponse';
    if (durable) {
      this.msgsAfterPersist.push(m);
      return;
    }
    // Anything after an append to this peer: that append can no longer grow (order is kept).
    this.openAppend.delete(m.to);
    this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private hardStateChanged(): boolean {
    const p = this.prevHardState;
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.log.committed;
  }

  private softStateChanged(): boolean {
    return this.prevSoftState.lead !== this.lead || this.prevSoftState.role !== this.role;
  }

  private trace(line: string): void {
    this.cfg.logger?.(`${this.id} t${this.term} ${this.role}: ${line}`);
  }
}
