// The cluster flags, checked as etcd checks them: --initial-cluster (name=peer-url,...), this
// member's place in it, --initial-cluster-state, and the heartbeat/election timing.
import { FlagError } from './flags.js';

export interface InitialMember {
  readonly name: string;
  /** As given (a member may list several URLs under one name), without a trailing slash. */
  readonly peerUrls: readonly string[];
}

export type ClusterState = 'new' | 'existing';

/** "a=http://h1:2380,b=http://h2:2380,a=http://h1:2381" -> members in first-seen order. */
export function parseInitialCluster(v: string): InitialMember[] {
  const byName = new Map<string, string[]>();
  for (const part of v.split(',')) {
    const s = part.trim();
    const eq = s.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid value "${v}" for flag --initial-cluster: "${s}" is not name=peer-url`);
    const name = s.slice(0, eq);
    let url: URL;
    try {
      url = new URL(s.slice(eq + 1));
    } catch {
      throw new FlagError(`invalid value "${v}" for flag --initial-cluster: "${s.slice(eq + 1)}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FlagError(`invalid value "${v}" for flag --initial-cluster: URL scheme must be http or https`);
    const urls = byName.get(name) ?? [];
    const text = url.href.replace(/\/$/, '');
    if (urls.includes(text)) throw new FlagError(`--initial-cluster: member ${name} lists ${text} twice`);
    urls.push(text);
    byName.set(name, urls);
  }
  const all = [...byName.values()].flat();
  const dup = all.find((u, i) => all.indexOf(u) !== i);
  if (dup !== undefined) throw new FlagError(`--initial-cluster: peer URL ${dup} is given to more than one member`);
  return [...byName].map(([name, peerUrls]) => ({ name, peerUrls }));
}

export interface ClusterFlags {
  readonly name: string;
  readonly initialCluster: string;
  readonly state: string;
  readonly advertisePeerUrls: readonly string[];
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

/** The validated cluster: etcd's error texts where etcd has one. */
export function checkCluster(f: ClusterFlags): { members: InitialMember[]; state: ClusterState } {
  if (f.state !== 'new' && f.state !== 'existing') {
    throw new FlagError(`invalid value "${f.state}" for flag --initial-cluster-state: valid values are "new" or "existing"`);
  }
  // etcd: an unset --initial-cluster is this member alone, at its advertised peer URLs.
  const members = f.initialCluster.trim() === ''
    ? [{ name: f.name, peerUrls: [...f.advertisePeerUrls] }]
    : parseInitialCluster(f.initialCluster);
  const self = members.find((m) => m.name === f.name);
  if (self === undefined) throw new FlagError(`couldn't find local name "${f.name}" in the initial cluster configuration`);
  const mine = [...f.advertisePeerUrls].sort().join(',');
  if ([...self.peerUrls].sort().join(',') !== mine) {
    throw new FlagError(`--initial-cluster has ${f.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${f.advertisePeerUrls.join(',')} ("${self.peerUrls.join(',')}"(resolved from ${self.peerUrls.join(',')}) != "${f.advertisePeerUrls.join(',')}"(resolved from ${f.advertisePeerUrls.join(',')}))`);
  }
  if (f.heartbeatMs * 5 > f.electionMs) {
    throw new FlagError(`--election-timeout[${f.electionMs}ms] should be at least as 5 times as --heartbeat-interval[${f.heartbeatMs}ms]`);
  }
  if (f.electionMs > 50_000) throw new FlagError(`--election-timeout[${f.electionMs}ms] is too long, and should be set less than 50000ms`);
  return { members, state: f.state };
}
