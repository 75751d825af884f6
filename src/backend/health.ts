// Health as etcd 3.5 judges it, in one place: /health (alarms, then leader, then a read), /livez
// and /readyz (named checks), and the gRPC health service. Every backend reports the same facts
// through V3Backend.healthFacts(); the checks here are pure over those facts plus one read.
import { EtcdError } from './errors.js';
import { AlarmType, RangeRequest } from '../gen/etcdserverpb/rpc.js';
import type { V3Backend } from './index.js';

/** What a backend knows about its own health, read at the moment of the check. */
export interface HealthFacts {
  /** A leader is known (etcd: srv.Leader() != raft.None). */
  readonly hasLeader: boolean;
  readonly isLearner: boolean;
  /** The active alarms' types (every member's). */
  readonly alarms: readonly AlarmType[];
  /** Set once a storage commit (fsync) failed: writes are refused from then on. etcd exits on a
   * failed fsync, so every read check fails too (a probe would find etcd dead). */
  readonly storageFailure: string | undefined;
}

export interface HealthResult {
  readonly ok: boolean;
  readonly reason: string;
}

const OK: HealthResult = { ok: true, reason: '' };

/** etcd's alarm names (pb.AlarmType.String()), as /health?exclude= takes them. */
function alarmName(a: AlarmType): string {
  return AlarmType[a] ?? String(a);
}

/** The read every health check ends with, as etcd's: keys only, one key. */
async function readCheck(backend: V3Backend, facts: HealthFacts, serializable: boolean): Promise<string | undefined> {
  if (facts.storageFailure !== undefined) return `etcdserver: storage failed: ${facts.storageFailure}`;
  if (!serializable && !facts.hasLeader) return 'etcdserver: no leader';
  try {
    await backend.range(RangeRequest.fromPartial({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), keysOnly: true, limit: 1n, serializable }));
    return undefined;
  } catch (e) {
    // As etcd 3.5: with auth on, the probe has no user; a refusal still proves the read path works.
    if (e instanceof EtcdError && (e.code === 'userEmpty' || e.code === 'permissionDenied')) return undefined;
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * etcd 3.5's /health: the first active alarm not named in `exclude` fails it ("ALARM NOSPACE",
 * "ALARM CORRUPT"), then a missing leader unless `serializable` ("RAFT NO LEADER"), then the
 * read ("RANGE ERROR:...").
 */
export async function checkHealth(backend: V3Backend, opts: { exclude: ReadonlySet<string>; serializable: boolean }): Promise<HealthResult> {
  const facts = backend.healthFacts();
  for (const a of facts.alarms) {
    if (opts.exclude.has(alarmName(a))) continue;
    const reason = a === AlarmType.NOSPACE ? 'ALARM NOSPACE' : a === AlarmType.CORRUPT ? 'ALARM CORRUPT' : 'ALARM UNKNOWN';
    return { ok: false, reason };
  }
  if (!opts.serializable && !facts.hasLeader) return { ok: false, reason: 'RAFT NO LEADER' };
  const err = await readCheck(backend, facts, opts.serializable);
  return err === undefined ? OK : { ok: false, reason: `RANGE ERROR:${err}` };
}

type Check = (backend: V3Backend, facts: HealthFacts) => Promise<string | undefined>;

/** etcd 3.5's named checks, in etcd's order. */
export const livezChecks: ReadonlyMap<string, Check> = new Map<string, Check>([
  ['serializable_read', (b, f) => readCheck(b, f, true)],
]);

export const readyzChecks: ReadonlyMap<string, Check> = new Map<string, Check>([
  ['data_corruption', async (_b, f) => (f.alarms.includes(AlarmType.CORRUPT) ? 'alarm activated: CORRUPT' : undefined)],
  ['serializable_read', (b, f) => readCheck(b, f, true)],
  ['linearizable_read', (b, f) => readCheck(b, f, false)],
  ['non_learner', async (_b, f) => (f.isLearner ? 'not supported for learner' : undefined)],
]);

/** Runs the named checks; `reason` is etcd's "[+]name ok" / "[-]name failed: why" lines. */
export async function runChecks(backend: V3Backend, checks: ReadonlyMap<string, Check>, names: readonly string[]): Promise<HealthResult> {
  const facts = backend.healthFacts();
  let ok = true;
  let reason = '';
  for (const name of names) {
    const err = await checks.get(name)!(backend, facts);
    if (err === undefined) reason += `[+]${name} ok\n`;
    else {
      ok = false;
      reason += `[-]${name} failed: ${err}\n`;
    }
  }
  return { ok, reason };
}

/** The gRPC health service's view: serving while a leader is known, no alarm is active and
 * storage works (what this server reported before /health had query parameters). */
export function isServing(f: HealthFacts): boolean {
  return f.hasLeader && f.alarms.length === 0 && f.storageFailure === undefined;
}
