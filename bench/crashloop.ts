// `npm run bench -- crashloop [KILLS]`: SIGKILL our server at random moments under a concurrent
// write load KILLS times (default 50), restarting it on the same data dir, and check every
// acknowledged write after each restart (test/crash/loop.ts). Prints iterations and acknowledged
// writes lost (must be 0); exit 1 on any problem.
import { runCrashLoop } from '../test/crash/loop.js';

export async function main(args: string[]): Promise<number> {
  const kills = Number(args[0] ?? process.env.CRASH_KILLS ?? 50);
  const writers = Number(process.env.CRASH_WRITERS ?? 32);
  process.stdout.write(`crashloop: ${kills} SIGKILLs, ${writers} concurrent writers, kill 0.2-2.5 s into each load\n`);
  const r = await runCrashLoop({
    kills, writers, minLoadMs: 200, maxLoadMs: 2500, cleanRestartEvery: 5,
    // Snapshots (and WAL segment releases) every 1000 entries: kills land in those too.
    extraArgs: ['--snapshot-count', '1000'],
    log: (l) => process.stdout.write(`  ${l}\n`),
  });
  for (const p of r.problems.slice(0, 20)) process.stdout.write(`  PROBLEM ${p}\n`);
  process.stdout.write(`crashloop: ${r.iterations} iterations, ${r.acknowledged} acknowledged writes, ${r.lost} acknowledged writes lost, ${r.problems.length} problems, highest revision ${r.revision}, ${r.seconds.toFixed(0)} s\n`);
  return r.lost === 0 && r.problems.length === 0 ? 0 : 1;
}
