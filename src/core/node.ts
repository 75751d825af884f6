// The raft node: the pure raft core (raft/) driven with real I/O — the WAL (wal/), a tick timer,
// the state machine's apply, and (multi-member) a transport: `send` for outbound messages,
// `receive` for inbound ones, ReadIndex answers through `onReadStates`, snapshots from a leader
// installed through `installSnapshot` before the entries that follow them are applied.
//
// One loop turns raft's Ready batches into effects, in this order (raft/types.ts Ready):
//   1. apply the committed entries (already durable: on a single member an entry is committed only
//      after its own WAL sync; with peers, on a quorum). Applying first means a batch's answers do
//      not wait for the next batch's fsync.
//   2. append the new entries and hard state to the WAL; fdatasync when raft needs it.
//   3. advance. Proposals arriving during the fsync pile up in raft's unstable log and go out
//      together in the next batch: that is the group commit, with no timer or batch size to tune.
// Snapshots: after `snapshotCount` applied entries (or SNAPSHOT_BYTES of them) the state machine is
// flushed (LMDB holds everything applied), a snapshot marker goes to the WAL and older segments
// are deleted. The in-memory log keeps applied entries only for lagging followers: at most
// SNAPSHOT_CATCHUP entries and CATCHUP_BYTES of data; a lone member keeps none (its WAL has them
// for a restart), so a big value is not held in memory after it is applied.
import type { Clock } from '../util/clock.js';
import {
  MemoryStorage, Raft, SeededRng, type ConfState, type Entry, type HardState, type Message, type NodeId, type OutboundMessage,
  type ReadState, type Snapshot,
} from './raft/index.js';
import { Wal, type WalState } from './wal/wal.js';

/** Entries kept in memory after a snapshot so a slightly lagging follower needs no snapshot
 * (--experimental-snapshot-catchup-entries). */
export const SNAPSHOT_CATCHUP = 5000;
/** Data bytes of applied entries kept in memory for lagging followers (beyond: they get a snapshot). */
export const CATCHUP_BYTES = 64 * 2 ** 20;
/** Data bytes applied between WAL snapshots: bounds the WAL on disk and the replay at start when
 * values are big (the entry count alone would let 10,000 1 MiB puts pile up). */
export const SNAPSHOT_BYTES = 256 * 2 ** 20;
/**
 * Applied batches, and their entries' data bytes, whose storage commits may be outstanding before
 * new proposals wait (storageBacklog). Storage folds the commits asked for while one runs into
 * the next, so many batches share one commit: the bytes bound is what bounds the staged data.
 */
const BACKLOG_BATCHES = 1024;
const BACKLOG_BYTES = 64 * 2 ** 20;
const EMPTY = new Uint8Array(0);

export interface RaftNodeOptions {
  readonly id: bigint;
  /** Members of a new cluster (used only when the WAL is empty). */
  readonly initialVoters: readonly bigint[];
  readonly walDir: string;
  readonly clock: Clock;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotCount: number;
  readonly walSegmentBytes?: number;
  /** Outstanding storage commits that hold new proposals (default BACKLOG_BATCHES, BACKLOG_BYTES). */
  readonly backlog?: { readonly batches: number; readonly bytes: number };
  /**
   * Applies committed entries in order, synchronously (skipping what the state machine already
   * holds); the promise resolves when their storage commit is done (not necessarily flushed).
   */
  readonly apply: (entries: readonly Entry[]) => Promise<void>;
  /** Resolves once everything applied so far is durable in the state machine's storage. */
  readonly flushState: () => Promise<void>;
  /** Index the state machine's storage holds (its consistent index at start). */
  readonly appliedIndex: number;
  readonly send?: (msgs: readonly Message[]) => void;
  /** Answers to readIndex(ctx) calls (this member's own). */
  readonly onReadStates?: (rs: readonly ReadState[]) => void;
  /**
   * A leader's snapshot to install before anything after it is applied: the state machine must
   * then hold everything up to at least snap.meta.index.
   */
  readonly installSnapshot?: (snap: Snapshot) => Promise<void>;
  readonly snapshotCatchupEntries?: number;
  /** Default SNAPSHOT_BYTES. */
  readonly snapshotBytes?: number;
  readonly onError: (err: Error) => void;
  readonly onWalSyncSeconds?: (seconds: number) => void;
}

export class RaftNode {
  readonly raft: Raft;
  readonly storage: MemoryStorage;
  readonly wal: Wal;
  private running = false;
  private stopped = false;
  private stopTick: (() => void) | undefined;
  private leaderWaiters: (() => void)[] = [];
  private knownLeaderWaiters: (() => void)[] = [];
  /** Times a leader (a different one, or the first) became known: etcd_server_leader_changes_seen_total. */
  leaderChanges = 0;
  private lastLeader: NodeId = 0n;
  private snapshotIndex: number;
  /** Data bytes applied since start, and that count at the last WAL snapshot. */
  private appliedBytes = 0;
  private snapshotBytes = 0;
  private snapshotting = false;
  private snapshotTask: Promise<void> = Promise.resolve();
  /** Set by fail(): storage or the WAL failed; nothing more is written. */
  private failed = false;
  private appliedIndex: number;
  /** The apply chain: resolves when every applied batch is visible in storage. */
  private applying: Promise<void> = Promise.resolve();
  /** Applied batches whose storage commit has not landed yet, and their entries' data bytes. */
  private commitsInFlight = 0;
  private bytesInFlight = 0;

  constructor(private readonly opts: RaftNodeOptions) {
    const { wal, state } = Wal.open(opts.walDir, opts.walSegmentBytes);
    this.wal = wal;
    wal.onSyncSeconds = opts.onWalSyncSeconds;
    this.storage = storageFrom(state, opts.initialVoters, opts.appliedIndex);
    if (state.snapshot === undefined) {
      // A new member: record the bootstrap snapshot (membership at 1/1) durably before anything.
      const snap = this.storage.snapshot();
      wal.saveSnapshot(snap.meta);
      wal.append(this.storage.initialState().hardState, []);
    }
    this.snapshotIndex = this.storage.snapshot().meta.index;
    this.appliedIndex = opts.appliedIndex;
    this.raft = new Raft({
      id: opts.id,
      storage: this.storage,
      electionTicks: opts.electionTicks,
      heartbeatTicks: opts.heartbeatTicks,
      rng: new SeededRng(Number(opts.id & 0xffffffffn) ^ Date.now()),
      preVote: true,
      checkQuorum: true,
      // Entries after the snapshot are delivered again; the state machine skips what it holds.
      applied: this.snapshotIndex,
    });
  }

  /** Starts ticking; a lone voter campaigns at once (no reason to wait an election timeout). */
  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.raft.tick();
      this.kick();
      this.stopTick = this.opts.clock.after(this.opts.tickMs, tick);
    };
    this.stopTick = this.opts.clock.after(this.opts.tickMs, tick);
    const cs = this.raft.confState();
    if (cs.voters.length === 1 && cs.voters[0] === this.opts.id) this.raft.campaign();
    this.kick();
  }

  get term(): number {
    return this.raft.term;
  }

  get leader(): bigint {
    return this.raft.lead;
  }

  get isLeader(): boolean {
    return this.raft.role === 'leader';
  }

  /** Resolves once this node is leader (single member: right after start). */
  whenLeader(): Promise<void> {
    if (this.isLeader) return Promise.resolve();
    return new Promise((res) => this.leaderWaiters.push(res));
  }

  /** Resolves once some leader is known (possibly this member). */
  whenLeaderKnown(): Promise<void> {
    if (this.leader !== 0n) return Promise.resolve();
    return new Promise((res) => this.knownLeaderWaiters.push(res));
  }

  /** Messages from peers (the transport). */
  receive(msgs: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) this.raft.step(m);
    this.kick();
  }

  /** Asks for a read point; the answer comes to onReadStates with this ctx (or never: retry). */
  readIndex(ctx: bigint): void {
    if (this.stopped) return;
    this.raft.readIndex(ctx);
    this.kick();
  }

  transferLeadership(to: NodeId): void {
    if (this.stopped) return;
    this.raft.transferLeadership(to);
    this.kick();
  }

  /** The transport found `id`'s process gone (connection refused): see Raft.reportPeerGone. */
  reportPeerGone(id: NodeId): boolean {
    return !this.stopped && this.raft.reportPeerGone(id);
  }

  /** A snapshot send to `to` ended (the transport knows whether it arrived). */
  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.stopped) return;
    this.raft.reportSnapshot(to, ok);
    this.kick();
  }

  proposeConfChange(cc: Parameters<Raft['proposeConfChange']>[0], context: Uint8Array): boolean {
    if (this.stopped) return false;
    const r = this.raft.proposeConfChange(cc, context);
    this.kick();
    return r !== 'dropped';
  }

  /** Hands data to raft; false when it was dropped (no leader known). */
  propose(data: Uint8Array): boolean {
    if (this.stopped) return false;
    const r = this.raft.propose(data);
    this.kick();
    return r !== 'dropped';
  }

  confState(): ConfState {
    return this.raft.confState();
  }

  /**
   * Starts the loop once the event loop has read what is ready now (setImmediate: after the poll
   * phase). One socket read holds many requests (a client's burst) and each is proposed from its
   * own stream callback: started at once, the loop would write and fdatasync the first proposal
   * alone and make the rest of the burst wait for the next fsync.
   */
  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    setImmediate(() => {
      void this.loop().catch((e: unknown) => this.fail(e)).finally(() => (this.running = false));
    });
  }

  /**
   * A WAL append or sync, a state machine commit or a snapshot failed (full or failing disk): the
   * node stops (no more appends on a log whose durability is unknown) and the owner hears once.
   */
  private fail(e: unknown): void {
    const first = !this.stopped;
    this.stopped = true;
    this.failed = true;
    this.stopTick?.();
    if (first) this.opts.onError(e instanceof Error ? e : new Error(String(e)));
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.raft.hasReady()) {
      const rd = this.raft.ready()!;
      this.opts.send?.(messagesOf(rd.messages, false));
      if (rd.readStates.length > 0) this.opts.onReadStates?.(rd.readStates);
      if (rd.snapshot !== undefined) {
        // A leader's snapshot: the state machine takes its data first, then the WAL records that
        // everything up to its index is held (a crash in between replays from the old marker and
        // skips what the new data already holds).
        await this.applying;
        await this.opts.installSnapshot?.(rd.snapshot);
        this.wal.saveSnapshot(rd.snapshot.meta);
        await this.wal.sync();
        this.storage.applySnapshot(rd.snapshot);
        this.snapshotIndex = rd.snapshot.meta.index;
        this.appliedIndex = Math.max(this.appliedIndex, rd.snapshot.meta.index);
      }
      // The new entries go to the WAL and their fdatasync starts before the committed ones are
      // applied, so the disk works while this thread applies (awaited below, before advance).
      const mustSync = this.wal.append(rd.hardState, rd.entries);
      const synced = mustSync ? this.wal.sync() : undefined;
      synced?.catch(() => undefined); // awaited below; this only keeps a throwing apply from leaving it unhandled
      if (rd.committedEntries.length > 0) {
        const batch = rd.committedEntries;
        // Applied now, in log order; only the storage commits run behind (in order, too).
        const committed = this.opts.apply(batch);
        let bytes = 0;
        for (const e of batch) bytes += e.data.length;
        this.commitsInFlight++;
        this.bytesInFlight += bytes;
        // The failure goes to fail(); the chain itself never rejects (nobody may be awaiting it).
        const settled = committed.then(() => undefined, (e: unknown) => this.fail(e)).finally(() => {
          this.commitsInFlight--;
          this.bytesInFlight -= bytes;
        });
        this.applying = Promise.all([this.applying, settled]).then(() => undefined);
        this.appliedIndex = batch[batch.length - 1]!.index;
        this.appliedBytes += bytes;
      }
      if (synced !== undefined) await synced;
      this.storage.append(rd.entries);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
      this.opts.send?.(messagesOf(rd.messages, true));
      this.raft.advance(rd);
      if (this.leader !== this.lastLeader) {
        if (this.leader !== 0n) this.leaderChanges++;
        this.lastLeader = this.leader;
      }
      if (this.leader !== 0n && this.knownLeaderWaiters.length > 0) {
        const waiters = this.knownLeaderWaiters;
        this.knownLeaderWaiters = [];
        for (const w of waiters) w();
      }
      if (this.isLeader && this.leaderWaiters.length > 0) {
        const waiters = this.leaderWaiters;
        this.leaderWaiters = [];
        for (const w of waiters) w();
      }
      this.maybeSnapshot();
      this.trimLog();
    }
  }

  /**
   * Drops applied entries from the in-memory log beyond what lagging followers may need: all of
   * them on a lone member, else those past CATCHUP_BYTES (the entry count is kept at snapshots).
   * Compacting needs a snapshot covering the entries: one at the applied index, where raft's
   * membership (changed in advance()) is exactly the snapshot's. Its data is made when a follower
   * needs it (the state machine's current file), so it costs nothing here.
   */
  private trimLog(): void {
    const applied = Math.min(this.appliedIndex, this.storage.lastIndex());
    const compacted = this.storage.firstIndex() - 1;
    let target: number;
    if (this.raft.isOnlyMember()) target = applied;
    else if (this.storage.retainedBytes() > 2 * CATCHUP_BYTES) target = this.storage.compactIndexKeeping(applied, CATCHUP_BYTES);
    else return;
    if (target <= compacted) return;
    if (this.storage.snapshot().meta.index < applied) this.storage.createSnapshot(applied, this.raft.confState(), EMPTY);
    this.storage.compact(target);
  }

  /** Every `snapshotCount` applied entries (or SNAPSHOT_BYTES): flush the state machine, mark the
   * WAL, drop old log. */
  private maybeSnapshot(): void {
    if (this.snapshotting) return;
    if (this.appliedIndex - this.snapshotIndex < this.opts.snapshotCount && this.appliedBytes - this.snapshotBytes < (this.opts.snapshotBytes ?? SNAPSHOT_BYTES)) return;
    this.snapshotting = true;
    const index = this.appliedIndex;
    const bytes = this.appliedBytes;
    // Taken now, after advance(): raft's membership is the one at `index` (trimLog may already
    // have made this very snapshot).
    const snap = this.storage.snapshot().meta.index < index ? this.storage.createSnapshot(index, this.raft.confState(), EMPTY) : this.storage.snapshot();
    // A graceful stop lets it finish (a restart then replays less); a failure abandons it.
    this.snapshotTask = (async () => {
      await this.applying;
      if (this.failed) return;
      await this.opts.flushState();
      if (this.failed) return;
      this.wal.saveSnapshot(snap.meta);
      await this.wal.sync();
      this.snapshotIndex = index;
      this.snapshotBytes = bytes;
      this.storage.compact(Math.max(this.storage.firstIndex() - 1, index - (this.opts.snapshotCatchupEntries ?? SNAPSHOT_CATCHUP)));
      this.wal.releaseTo(index);
    })().catch((e: unknown) => this.fail(e))
      .finally(() => (this.snapshotting = false));
  }

  /**
   * Writes are answered at apply, so nothing else holds clients back while storage commits fall
   * behind: with the backlog limit of them outstanding (batches or bytes), this resolves when they have landed
   * (new proposals wait for it, which bounds the staged data held in memory); undefined when
   * there is no backlog. The raft loop itself never waits for it (heartbeats keep going).
   */
  storageBacklog(): Promise<void> | undefined {
    const limit = this.opts.backlog ?? { batches: BACKLOG_BATCHES, bytes: BACKLOG_BYTES };
    return this.commitsInFlight >= limit.batches || this.bytesInFlight >= limit.bytes ? this.applying : undefined;
  }

  /** Stops ticking and proposing; waits for in-flight applies and syncs the WAL. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopTick?.();
    while (this.running) await new Promise((r) => setImmediate(r));
    await this.applying.catch(() => undefined);
    await this.snapshotTask;
    await this.wal.close();
  }
}

function messagesOf(out: readonly OutboundMessage[], afterPersist: boolean): Message[] {
  const msgs: Message[] = [];
  for (const o of out) if (o.afterPersist === afterPersist) msgs.push(o.message);
  return msgs;
}

/**
 * Raft's in-memory storage rebuilt from a WAL replay, or bootstrapped for a new member: membership
 * as a snapshot at the state machine's index (a restored or pre-WAL data dir already holds applied
 * entries; the log continues after them).
 */
function storageFrom(state: WalState, voters: readonly bigint[], applied: number): MemoryStorage {
  if (state.snapshot === undefined) return MemoryStorage.bootstrap(voters, [], Math.max(1, applied));
  const s = new MemoryStorage();
  s.applySnapshot({ meta: state.snapshot, data: new Uint8Array(0) });
  s.append(state.entries);
  const last = state.entries[state.entries.length - 1]?.index ?? state.snapshot.index;
  const hs: HardState = state.hardState ?? { term: state.snapshot.term, vote: 0n, commit: state.snapshot.index };
  // A hard state written before its entries' sync could point past what survived: clamp.
  s.setHardState({ ...hs, commit: Math.min(Math.max(hs.commit, state.snapshot.index), last) });
  return s;
}
