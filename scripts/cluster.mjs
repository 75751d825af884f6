// `npm run cluster`: a local 3-member cluster of this server on loopback, as etcd's Procfile runs
// one (clients on 2379/22379/32379, peers on 2380/22380/32380). Prints the endpoints; Ctrl-C
// stops the members (SIGTERM, each drains). Data stays in ./cluster.etcd/<name> across runs
// (delete it for a new cluster).
//   npm run cluster                      # 3 members
//   CLUSTER_SIZE=5 npm run cluster       # any size; ports step by 10000 (2379, 12379, 22379, ...)
//   CLUSTER_DIR=/tmp/c npm run cluster   # another data root
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const main = join(root, 'dist', 'src', 'main.js');
if (!existsSync(main)) {
  console.error(`${main} not found: build first (npm run build)`);
  process.exit(1);
}
const size = Number(process.env.CLUSTER_SIZE ?? 3);
const dir = resolve(process.env.CLUSTER_DIR ?? 'cluster.etcd');
mkdirSync(dir, { recursive: true });
// 3 members use etcd's Procfile ports; larger clusters step by 10000 from 2379.
const ports = Array.from({ length: size }, (_, i) => (size === 3 ? [2379, 22379, 32379][i] : 2379 + 10000 * i));
const members = ports.map((client, i) => ({ name: `infra${i + 1}`, client, peer: client + 1 }));
const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
const state = members.every((m) => existsSync(join(dir, m.name, 'member', 'wal'))) ? 'existing' : 'new';

const children = members.map((m) => {
  const log = openSync(join(dir, `${m.name}.log`), 'a');
  const child = spawn(process.execPath, [
    '--max-semi-space-size=64', main, '--name', m.name, '--data-dir', join(dir, m.name),
    '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--initial-cluster', initialCluster, '--initial-cluster-token', 'etcd-gateway-local', '--initial-cluster-state', state,
  // Its own process group: Ctrl-C reaches this script only, which stops each member once.
  ], { stdio: ['ignore', log, log], detached: true });
  child.on('exit', (code, signal) => {
    console.log(`${m.name} exited (${signal ?? code}); log: ${join(dir, `${m.name}.log`)}`);
    if (!stopping) stop();
  });
  return child;
});

let stopping = false;
function stop() {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const endpoints = members.map((m) => `127.0.0.1:${m.client}`).join(',');
console.log(`${size} members (${state} cluster), data and logs in ${dir}`);
for (const m of members) console.log(`  ${m.name}: client http://127.0.0.1:${m.client}  peer http://127.0.0.1:${m.peer}`);
console.log(`\n  ETCDCTL_API=3 etcdctl --endpoints=${endpoints} endpoint status -w table\n\nCtrl-C stops the cluster.`);
