// The raft core's surface.
export { RaftInvariantError, setDebugChecks } from './assert.js';
export { applyConfChange, confChangeContext, decodeConfChange, encodeConfChange, type ConfChange, type ConfChangeType } from './confchange.js';
export { describe, describeEntry, describeReady } from './describe.js';
export { MemoryStorage } from './memory-storage.js';
export { Raft, type ProposeResult, type RaftConfig, type RaftStatus } from './raft.js';
export { SeededRng, type Rng } from './rng.js';
export type { Storage, StorageGap } from './storage.js';
export * from './types.js';
