// One simulation run: a faulty phase checking safety after every step, then a healed phase
// checking liveness (a leader within a bound; every proposal committed everywhere within a bound).
import { SimCluster } from './cluster.js';
import { paramsFromSeed, type SimParams } from './params.js';

export interface SimResult {
  readonly params: SimParams;
  readonly rounds: number;
  readonly checks: number;
  readonly reads: number;
  readonly cluster: SimCluster;
}

const PROPOSALS_AFTER_HEAL = 5;

/** A failed run: the seed that replays it and the tail of its trace. */
export class SimFailure extends Error {
  override readonly name = 'SimFailure';
  constructor(readonly seed: number, readonly trace: readonly string[], override readonly cause: unknown) {
    super(`SIM_SEED=${seed}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export function runSim(seed: number): SimResult {
  const params = paramsFromSeed(seed);
  let c: SimCluster | undefined;
  try {
    c = new SimCluster(params);
    return simulate(c);
  } catch (err) {
    throw new SimFailure(seed, c?.trace ?? [], err);
  }
}

function simulate(c: SimCluster): SimResult {
  const params = c.params;
  for (let i = 0; i < params.faultTicks; i++) c.round();
  c.heal();

  const leaderBound = params.electionTicks * 30;
  // A leader all nodes follow, at one term, for two election timeouts in a row: a node whose timer
  // was about to fire at the heal may still legitimately start one more election before that.
  let healed = 0;
  let stable = 0;
  let last: string | undefined;
  while (stable < 2 * params.electionTicks) {
    if (++healed > leaderBound) c.fail(`liveness: no stable leader agreed by all nodes ${leaderBound} ticks after healing`);
    c.round();
    const leader = c.agreedLeader();
    const key = leader ? `${leader.id}@${leader.term}` : undefined;
    stable = key !== undefined && key === last ? stable + 1 : 0;
    last = key;
  }
  const ids = c.ids;
  const values = Array.from({ length: PROPOSALS_AFTER_HEAL }, (_, i) => c.propose(ids[i % ids.length]!));
  // catching up a lagging follower one small append at a time is part of the bound
  const commitBound = params.electionTicks * 10 + 200;
  for (let t = 0; ; t++) {
    // Applied somewhere at a known index, and every node's state machine is past that index.
    const at = values.map((v) => c.appliedAt.get(v));
    const last = at.every((i) => i !== undefined) ? Math.max(...(at as number[])) : Number.POSITIVE_INFINITY;
    const missing = ids.filter((id) => c.apps.get(id)!.appliedIndex < last);
    if (missing.length === 0) break;
    if (t > commitBound) c.fail(`liveness: proposals ${values.join(',')} not applied on ${missing.join(',')} ${commitBound} ticks after proposing`);
    c.round();
  }
  c.checker.checkLogsMatch(c.rafts);
  return { params, rounds: c.now, checks: c.checker.checks, reads: c.checker.readsChecked, cluster: c };
}
