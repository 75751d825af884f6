// The raft core's plain values: log entries, durable state, the messages peers exchange, and the
// Ready batch the caller persists, sends and applies. Terms and indexes are counters (< 2^53);
// node ids are 64-bit, so bigint; 0n means "none".

export type NodeId = bigint;
export const NONE: NodeId = 0n;

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be on disk before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMeta extends ConfState {
  readonly index: number;
  readonly term: number;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's state at meta.index; opaque to raft. */
  readonly data: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** 0 for local messages (proposals, read requests, transfer requests), also when forwarded. */
  readonly term: number;
}

export interface VoteRequest extends Envelope {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Campaign started by a leader transfer: voters ignore their leader lease. */
  readonly transfer: boolean;
}
export interface VoteResponse extends Envelope {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
}
export interface Append extends Envelope {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}
export interface AppendResponse extends Envelope {
  readonly type: 'appendResponse';
  /** Accepted: the last index now matching the leader. Rejected: the prevIndex that did not match. */
  readonly index: number;
  readonly reject: boolean;
  /** On reject: the follower's guess of the last index whose term is <= hintTerm. */
  readonly hintIndex: number;
  readonly hintTerm: number;
}
export interface Heartbeat extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: number;
  /** Set when the heartbeat confirms leadership for pending ReadIndex requests. */
  readonly ctx: bigint | undefined;
}
export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResponse';
  readonly ctx: bigint | undefined;
}
export interface InstallSnapshot extends Envelope {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}
export interface Propose extends Envelope {
  readonly type: 'propose';
  readonly entries: readonly Entry[];
}
export interface ReadIndexRequest extends Envelope {
  readonly type: 'readIndex';
  readonly ctx: bigint;
}
export interface ReadIndexResponse extends Envelope {
  readonly type: 'readIndexResponse';
  readonly ctx: bigint;
  readonly index: number;
}
export interface TimeoutNow extends Envelope {
  readonly type: 'timeoutNow';
}
export interface TransferLeader extends Envelope {
  readonly type: 'transferLeader';
  readonly transferee: NodeId;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | Append
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | Propose
  | ReadIndexRequest
  | ReadIndexResponse
  | TimeoutNow
  | TransferLeader;

export type MessageType = Message['type'];

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly index: number;
  readonly ctx: bigint;
}

export interface OutboundMessage {
  readonly message: Message;
  /** Send only after this Ready's hardState, snapshot and entries are durable (votes, acks). */
  readonly afterPersist: boolean;
}

export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/**
 * One batch of work for the caller, in this order: send the messages not flagged afterPersist
 * (a leader's appends may go out while it writes); persist snapshot, entries and hardState; send
 * the flagged messages; restore the snapshot and apply committedEntries; then `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly OutboundMessage[];
  readonly readStates: readonly ReadState[];
}
