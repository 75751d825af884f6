// A cluster of OUR server processes on loopback (the counterpart of cluster.ts, which starts real
// etcd): free ports, one temp root (removed on stop), members started together (none is healthy
// before a quorum elects a leader), each SIGKILLed, SIGSTOPped or restarted by its own PID, and
// new members started with --initial-cluster-state existing to join.
import { createServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { cleanEnv, freePort, launch, makeTempDir, OUR_MAIN, ourNodeFlags, removeTempDir, type Server } from './procs.js';

export interface OurMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** host:port */
  readonly endpoint: string;
  readonly peerUrl: string;
  /** Where the member really listens for peers (differs from peerUrl's port when proxied). */
  readonly listenPeerUrl: string;
  readonly dataDir: string;
  server: Server | undefined;
  /** The --initial-cluster it was started with (a joiner's includes itself and the cluster then). */
  initialCluster: string;
}

export interface OurCluster {
  readonly members: OurMember[];
  readonly root: string;
  /** "127.0.0.1:a,..." of the running members, for --endpoints. */
  endpoints(): string;
  /** host:port of each running member (what endpoints() joins). */
  running(): string[];
  kill9(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT by PID (the process stays, frozen). */
  pause(i: number): void;
  resume(i: number): void;
  restart(i: number): Promise<void>;
  /** Allocates ports for a new member (to pass to member add) without starting it. */
  prepare(name: string): Promise<OurMember>;
  /** Starts a prepared member joining the running cluster (--initial-cluster-state existing). */
  join(m: OurMember): Promise<void>;
  /**
   * (partitionable clusters) Cuts every peer request to and from member i: its proxy refuses all
   * requests, and the others' proxies refuse those it sends. heal() restores the network.
   */
  partition(i: number): Promise<void>;
  heal(): void;
  stop(): Promise<void>;
}

export interface OurClusterOptions {
  readonly extraArgs?: readonly string[];
  /**
   * Put an HTTP proxy (in this process) in front of each member's peer port: the advertised peer
   * URL is the proxy's, so partition() can cut a member's peer traffic both ways.
   */
  readonly partitionable?: boolean;
  /**
   * https:// peer URLs: every member serves and presents this certificate (made for 127.0.0.1)
   * and requires its peers' certificates to be signed by `ca` (--peer-client-cert-auth); or
   * 'auto': each member makes its own self-signed certificate (--peer-auto-tls).
   */
  readonly peerTls?: { readonly ca: string; readonly cert: string; readonly key: string } | 'auto';
  /** Extra environment of one member's process (e.g. NODE_OPTIONS=--inspect=... for a profile). */
  readonly memberEnv?: (name: string) => Record<string, string>;
}

export async function startOurCluster(n = 3, opts: OurClusterOptions = {}): Promise<OurCluster> {
  // The partition proxies speak plain HTTP to the members.
  if (opts.partitionable && opts.peerTls !== undefined) throw new Error('partitionable clusters have http peer URLs');
  const peerScheme = opts.peerTls !== undefined ? 'https' : 'http';
  const peerTlsArgs = opts.peerTls === undefined ? [] : opts.peerTls === 'auto' ? ['--peer-auto-tls'] : [
    '--peer-cert-file', opts.peerTls.cert, '--peer-key-file', opts.peerTls.key,
    '--peer-trusted-ca-file', opts.peerTls.ca, '--peer-client-cert-auth',
  ];
  const root = await makeTempDir('ours-cluster-');
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
  const members: OurMember[] = [];
  const proxies: HttpServer[] = [];
  /** Member indexes cut off, and their member IDs (hex) as peers send them in X-Server-From. */
  const isolated = new Set<number>();
  const isolatedIds = new Set<string>();
  /** Requests being proxied (a raft stream lasts as long as its connection): partition() cuts them. */
  const open = new Set<{ index: () => number; from: string; cut(): void }>();
  const isCut = (index: number, from: string): boolean => isolated.has(index) || isolatedIds.has(from);
  const proxy = async (index: () => number, listenPort: number, target: number): Promise<void> => {
    const server = createServer((req, res) => {
      const from = String(req.headers['x-server-from'] ?? '');
      if (isCut(index(), from)) {
        req.socket.destroy();
        return;
      }
      const up = httpRequest({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      const entry = { index, from, cut: () => { up.destroy(); req.socket.destroy(); } };
      open.add(entry);
      res.on('close', () => open.delete(entry));
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', () => r()));
    proxies.push(server);
  };
  const make = async (name: string): Promise<OurMember> => {
    const clientPort = await port();
    const peerPort = await port();
    const realPeerPort = opts.partitionable ? await port() : peerPort;
    const m: OurMember = {
      name, clientPort, peerPort, endpoint: `127.0.0.1:${clientPort}`, peerUrl: `${peerScheme}://127.0.0.1:${peerPort}`,
      listenPeerUrl: `${peerScheme}://127.0.0.1:${realPeerPort}`, dataDir: join(root, name), server: undefined, initialCluster: '',
    };
    if (opts.partitionable) await proxy(() => members.indexOf(m), peerPort, realPeerPort);
    return m;
  };
  for (let i = 0; i < n; i++) members.push(await make(`m${i}`));
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  for (const m of members) m.initialCluster = initial;
  const token = `ours-test-${process.pid}-${Date.now()}`;

  const start = (m: OurMember, state: 'new' | 'existing'): Promise<Server> => {
    const clientUrl = `http://127.0.0.1:${m.clientPort}`;
    return launch({
      name: 'ours',
      command: process.execPath,
      args: [
        ...ourNodeFlags(), OUR_MAIN,
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', m.listenPeerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', m.initialCluster, '--initial-cluster-token', token,
        '--initial-cluster-state', state,
        // Fast elections keep failover tests short (as cluster.ts does for real etcd).
        '--heartbeat-interval', '50', '--election-timeout', '500',
        ...peerTlsArgs,
        ...(opts.extraArgs ?? []),
      ],
      env: cleanEnv(opts.memberEnv?.(m.name)),
      clientPort: m.clientPort,
      peerUrl: m.peerUrl,
      dataDir: m.dataDir,
      logPath: join(root, `${m.name}.log`),
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

  const running = (): string[] => members.filter((m) => m.server !== undefined).map((m) => m.endpoint);
  return {
    members,
    root,
    running,
    endpoints: () => running().join(','),
    async kill9(i) {
      const m = members[i]!;
      await m.server?.kill9();
      m.server = undefined;
    },
    pause(i) {
      process.kill(members[i]!.server!.pid, 'SIGSTOP');
    },
    resume(i) {
      process.kill(members[i]!.server!.pid, 'SIGCONT');
    },
    async restart(i) {
      const m = members[i]!;
      if (m.server !== undefined) throw new Error(`${m.name} is running`);
      m.server = await start(m, 'existing');
    },
    async prepare(name) {
      const m = await make(name);
      const running = members.filter((x) => x.server !== undefined);
      m.initialCluster = [...running, m].map((x) => `${x.name}=${x.peerUrl}`).join(',');
      return m;
    },
    async join(m) {
      members.push(m);
      m.server = await start(m, 'existing');
    },
    async partition(i) {
      const m = members[i]!;
      const list = await (await fetch(`${m.listenPeerUrl}/members`)).json() as { id: string; peerURLs: string[] }[];
      const id = list.find((x) => x.peerURLs.includes(m.peerUrl))?.id;
      if (id === undefined) throw new Error(`${m.name} not in its own member list`);
      isolated.add(i);
      isolatedIds.add(id);
      for (const r of open) if (isCut(r.index(), r.from)) r.cut();
    },
    heal() {
      isolated.clear();
      isolatedIds.clear();
    },
    async stop() {
      // Resume anything frozen first, or SIGTERM would wait for it.
      for (const m of members) if (m.server !== undefined) try { process.kill(m.server.pid, 'SIGCONT'); } catch { /* gone */ }
      await Promise.all(members.map((m) => m.server?.stop()));
      for (const p of proxies) p.closeAllConnections();
      await Promise.all(proxies.map((p) => new Promise<void>((r) => p.close(() => r()))));
      await removeTempDir(root);
    },
  };
}
