// Deterministic simulation of the raft core. `SIM_SEED=n` replays one seed; `SIM_RUNS=n` sets how
// many seeds (from SIM_SEED_BASE, default 1) run; a failure prints SIM_SEED=<n> and the trace tail.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeParams, paramsFromSeed } from './params.js';
import { runSim, SimFailure } from './run.js';

const DEFAULT_RUNS = 200; // ~2 s; SIM_RUNS=5000 for a long soak

function seeds(): number[] {
  const one = process.env['SIM_SEED'];
  if (one !== undefined && one !== '') return [Number(one)];
  const runs = Number(process.env['SIM_RUNS'] ?? DEFAULT_RUNS);
  const base = Number(process.env['SIM_SEED_BASE'] ?? 1);
  return Array.from({ length: runs }, (_, i) => base + i);
}

test('raft simulation: safety under faults, liveness after healing', () => {
  const started = performance.now();
  let checks = 0;
  let reads = 0;
  const list = seeds();
  for (const seed of list) {
    try {
      const r = runSim(seed);
      checks += r.checks;
      reads += r.reads;
      if (process.env['SIM_VERBOSE']) console.log(`seed ${seed}: ${r.rounds} rounds, ${JSON.stringify(r.cluster.stats)} net=${JSON.stringify(r.cluster.network.stats)}`);
    } catch (err) {
      const trace = err instanceof SimFailure ? err.trace.slice(-150).join('\n') : '';
      console.error(`${trace}\nSIM_SEED=${seed}\n${describeParams(paramsFromSeed(seed))}\n${err instanceof SimFailure && err.cause instanceof Error ? err.cause.stack : ''}`);
      throw err;
    }
  }
  console.log(`raft sim: ${list.length} seeds, ${checks} invariant checks, ${reads} reads checked, ${Math.round(performance.now() - started)} ms`);
  assert.ok(checks > 0);
});

