// One seed picks every parameter of a run ("swarm testing"): cluster size, fault rates, raft options.
import { SeededRng } from '../../src/core/raft/rng.js';

export interface SimParams {
  readonly seed: number;
  readonly nodes: 3 | 5;
  readonly faultTicks: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly maxDelayTicks: number;
  /** Messages on one link stay in order during the faulty phase (always after healing). */
  readonly fifo: boolean;
  /** Per tick: chance that one live node crashes / one crashed node restarts. */
  readonly crashRate: number;
  readonly restartRate: number;
  /** Chance that a crash hits between sending a Ready's early messages and persisting it. */
  readonly midReadyCrashRate: number;
  readonly partitionRate: number;
  readonly healRate: number;
  readonly proposeRate: number;
  readonly readRate: number;
  readonly transferRate: number;
  /** Take an application snapshot (and compact) every this many applied entries. */
  readonly snapshotEvery: number;
  readonly maxInflight: number;
  readonly maxEntriesPerAppend: number;
}

export function paramsFromSeed(seed: number): SimParams {
  const r = new SeededRng(seed).fork('params');
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)]!;
  const preVote = r.next() < 0.75;
  return {
    seed,
    nodes: seed % 2 === 0 ? 3 : 5,
    faultTicks: 300 + r.int(300),
    electionTicks: pick([5, 10, 10, 20]),
    heartbeatTicks: 1,
    preVote,
    // check-quorum without pre-vote lets a rejoining node depose a healthy leader; both are tested
    checkQuorum: r.next() < 0.75,
    dropRate: pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: pick([0, 0.01, 0.05]),
    maxDelayTicks: pick([0, 1, 2, 4]),
    fifo: r.next() < 0.5,
    crashRate: pick([0, 0.005, 0.01, 0.03]),
    restartRate: pick([0.02, 0.05, 0.2]),
    midReadyCrashRate: pick([0, 0.05, 0.3]),
    partitionRate: pick([0, 0.005, 0.02]),
    healRate: pick([0.02, 0.05, 0.1]),
    proposeRate: pick([0.1, 0.3, 0.8]),
    readRate: pick([0, 0.05, 0.2]),
    transferRate: pick([0, 0.002, 0.01]),
    snapshotEvery: pick([5, 20, 1000]),
    maxInflight: pick([1, 4, 64]),
    maxEntriesPerAppend: pick([1, 3, 64]),
  };
}

export function describeParams(p: SimParams): string {
  return Object.entries(p).map(([k, v]) => `${k}=${String(v)}`).join(' ');
}
