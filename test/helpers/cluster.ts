// A real etcd 3.4 cluster of N members on loopback for gateway-mode tests: free ports, one temp
// root (removed on stop), members started together (none is healthy before a quorum is up),
// each stopped or SIGKILLed by its own PID and restartable on its data dir.
import { join } from 'node:path';
import { cleanEnv, ETCD_BIN, freePort, launch, makeTempDir, removeTempDir, type Server } from './procs.js';

export interface ClusterMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** host:port */
  readonly endpoint: string;
  /** host:port of the member's TLS client listener (only with the tls option). */
  readonly tlsEndpoint: string | undefined;
  server: Server | undefined;
}

export interface EtcdCluster {
  readonly members: readonly ClusterMember[];
  /** "127.0.0.1:a,127.0.0.1:b,..." for --endpoints */
  readonly endpoints: string;
  /** SIGKILL one member (by its PID). */
  kill9(i: number): Promise<void>;
  /** Start a stopped member again on its data dir. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** TLS files for a second, https client listener on each member (the http one stays for health checks). */
export interface ClusterTls {
  readonly cert: string;
  readonly key: string;
  /** Members require client certificates signed by this CA. */
  readonly ca: string;
}

export async function startEtcdCluster(n = 3, extraArgs: string[] = [], tls?: ClusterTls): Promise<EtcdCluster> {
  const root = await makeTempDir('etcd-cluster-');
  const used = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  const members: ClusterMember[] = [];
  for (let i = 0; i < n; i++) {
    const clientPort = await port();
    const peerPort = await port();
    const tlsEndpoint = tls !== undefined ? `127.0.0.1:${await port()}` : undefined;
    members.push({ name: `m${i}`, clientPort, peerPort, endpoint: `127.0.0.1:${clientPort}`, tlsEndpoint, server: undefined });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `gw-test-${process.pid}-${Date.now()}`;

  const start = (m: ClusterMember, state: 'new' | 'existing'): Promise<Server> => {
    const clientUrl = `http://127.0.0.1:${m.clientPort}`;
    const peerUrl = `http://127.0.0.1:${m.peerPort}`;
    const dataDir = join(root, m.name);
    return launch({
      name: 'etcd',
      command: ETCD_BIN,
      args: [
        '--name', m.name, '--data-dir', dataDir,
        '--listen-client-urls', m.tlsEndpoint !== undefined ? `${clientUrl},https://${m.tlsEndpoint}` : clientUrl,
        '--advertise-client-urls', clientUrl,
        ...(tls !== undefined ? ['--cert-file', tls.cert, '--key-file', tls.key, '--client-cert-auth', '--trusted-ca-file', tls.ca] : []),
        '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', initialCluster, '--initial-cluster-token', token,
        '--initial-cluster-state', state,
        // Fast elections keep failover tests short (etcd's defaults: 100 ms / 1000 ms).
        '--heartbeat-interval', '50', '--election-timeout', '500',
        ...extraArgs,
      ],
      env: cleanEnv(),
      clientPort: m.clientPort,
      peerUrl,
      dataDir,
      logPath: join(root, `${m.name}.log`),
      // The data dir belongs to the cluster (a restart reuses it), removed with the root on stop().
      ownedDirs: [],
    });
  };

  try {
    const servers = await Promise.all(members.map((m) => start(m, 'new')));
    servers.forEach((s, i) => { members[i]!.server = s; });
  } catch (e) {
    await Promise.all(members.map((m) => m.server?.kill9()));
    await removeTempDir(root);
    throw e;
  }

  return {
    members,
    endpoints: members.map((m) => m.endpoint).join(','),
    async kill9(i) {
      const m = members[i]!;
      await m.server?.kill9();
      m.server = undefined;
    },
    async restart(i) {
      const m = members[i]!;
      if (m.server !== undefined) throw new Error(`${m.name} is running`);
      m.server = await start(m, 'existing');
    },
    async stop() {
      await Promise.all(members.map((m) => m.server?.stop()));
      await removeTempDir(root);
    },
  };
}
