// The peer transport, HTTP like etcd's rafthttp, on --listen-peer-urls:
//   GET  /raft/stream/message/<dialer id>
//                        the stream (stream.ts): every member keeps one such GET open to each peer,
//                        and the peer writes its raft messages for the dialler into the response as
//                        they come, one frame per batch. Raft traffic goes this way while it is up.
//   POST /raft           a batch of raft messages (codec.ts): the pipeline, used for a peer while no
//                        stream from it is attached (start, reconnects). Per peer one POST is in
//                        flight at a time and everything queued meanwhile goes in the next one.
//   POST /raft/snapshot  a snapshot message followed by the MVCC data file, streamed to disk.
//   GET  /raft/probing   liveness; the sender measures the round trip (etcd's prober).
//   GET  /members        the member list (a member joining with --initial-cluster-state existing
//                        learns its ID and the cluster ID from it), as etcd's peer /members.
//   POST /leases         a follower's lease keep-alive forwarded to the leader (etcd's /leases).
// With https:// peer URLs (PeerTls) the listener is node:https and every request above goes out over
// TLS with the trusted CA and this member's certificate as its client certificate, as etcd's peer
// transport does; with clientCertAuth a peer without a certificate signed by the CA (or, with
// allowedCn, one of another Common Name, or one the CRL lists) is refused before any request is
// read. The certificate files are re-read when they change (cert rotation without a restart).
// Every request carries X-Etcd-Cluster-ID; a mismatch is refused with 412 and its messages are
// dropped, as etcd does. Failed sends are dropped too: raft retries on its own schedule.
// Per peer, bytes sent and received and failed sends/receives are counted (etcd's
// etcd_network_peer_* metrics), and messages by channel (stream or pipeline).
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { buildConnector, Pool } from 'undici';
import type { TlsFiles } from '../../tls/files.js';
import { identityRefusal, type AllowedIdentity } from '../../tls/identity.js';
import type { Message, NodeId } from '../raft/index.js';
import { CodecError, decodeBatch, encodeBatch, encodeFrame } from './codec.js';
import { RAFT_TO_HEADER, STREAM_PATH, StreamReader, StreamWriter } from './stream.js';
import { errCode } from '../../util/err-code.js';

export const CLUSTER_ID_HEADER = 'x-etcd-cluster-id';
const FROM_HEADER = 'x-server-from';
/** Messages waiting for one peer beyond this are dropped (a dead peer must not grow memory). */
const MAX_QUEUED = 8192;
/** Messages per POST at most (a batch of big appends stays a bounded body). */
const MAX_BATCH = 1024;
/** A POST not answered within this is abandoned (a stopped peer): raft will resend. */
const SEND_TIMEOUT_MS = 3_000;
const PROBE_INTERVAL_MS = 1_000;
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;
/** How often stream writers check for idleness (link heartbeats) and stalls. */
const STREAM_TICK_MS = 250;

/** Per peer (by member ID, hex): what went over the wire, for metrics and tests. */
export interface PeerStats {
  readonly id: string;
  sentBytes: number;
  receivedBytes: number;
  /** Pipeline POSTs that failed, streams to the peer given up because it did not read them. */
  sentFailures: number;
  /** Undecodable bodies from the peer; streams from it refused, broken or undecodable. */
  receivedFailures: number;
  /** Raft messages sent on the stream / by the pipeline (snapshots not counted). */
  streamMessages: number;
  pipelineMessages: number;
}

export interface MemberInfo {
  readonly id: string; // hex
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

/** The peer port's TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, ...). */
export interface PeerTls {
  /**
   * This member's certificate and key (served by https listeners, presented to https peers), the
   * CA that verifies the peers' server and (clientCertAuth) client certificates, and the CRL:
   * re-read when the files change, so rotating them needs no restart (as etcd).
   */
  readonly files: TlsFiles;
  readonly clientCertAuth: boolean;
  /** --peer-cert-allowed-cn / --peer-cert-allowed-hostname: '' accepts any. */
  readonly allowed: AllowedIdentity;
  /** --peer-auto-tls: the peers' certificates are not verified (etcd's InsecureSkipVerify for a self-signed pair). */
  readonly insecureSkipVerify: boolean;
}

/**
 * undici's connect option for dialing peers. With TLS, a connector that follows the files: a
 * rotated client certificate (or CA) is used from the next connection on.
 */
function peerConnect(tls: PeerTls | undefined, timeoutMs?: number): buildConnector.BuildOptions | buildConnector.connector {
  const timeout = timeoutMs !== undefined ? { timeout: timeoutMs } : {};
  if (tls === undefined) return timeout;
  let built: { version: number; connect: buildConnector.connector } | undefined;
  return (opts, callback) => {
    const snap = tls.files.current();
    if (built?.version !== snap.version) {
      const { ca, cert, key, ciphers, minVersion } = snap.options;
      built = {
        version: snap.version,
        connect: buildConnector({ ca, cert, key, ciphers, minVersion, rejectUnauthorized: !tls.insecureSkipVerify, ...timeout }),
      };
    }
    built.connect(opts, callback);
  };
}

/** What the transport needs from its member. */
export interface TransportHost {
  /** The cluster ID requests must carry (hex, as etcd's header). */
  clusterIdHex(): string;
  memberIdHex(): string;
  /** Steps received messages into raft. */
  receive(msgs: Message[]): void;
  /** A snapshot whose data is the file at dbPath (the host owns the file from now on). */
  receiveSnapshot(msg: Extract<Message, { type: 'snapshot' }>, dbPath: string): void;
  /** A consistent copy of the MVCC data file for a snapshot to a peer; cleanup removes it. */
  snapshotFile(): Promise<{ file: string; cleanup(): Promise<void> }>;
  /** A snapshot send ended: raft probes the follower again (ok or not). */
  snapshotSent(to: NodeId, ok: boolean): void;
  members(): MemberInfo[];
  /** A member removed from the cluster: its messages are refused (410, as etcd). */
  isRemoved(id: bigint): boolean;
  /** The leader renews a lease for a follower: the remaining TTL (-1: not found / not leader). */
  renewLease(id: bigint): number;
  /** The leader promotes a learner for a member that forwarded the request: '' or an error code. */
  promote(id: bigint): Promise<string>;
  /** Where incoming snapshot files are written. */
  readonly snapDir: string;
  onRoundTrip?(toHex: string, seconds: number): void;
  onSnapshot?(direction: 'send' | 'receive', peerHex: string, ok: boolean): void;
  onError?(what: string, err: unknown): void;
  /** A peer answered 410: this member was removed from the cluster (etcd then stops). */
  onRemoved?(): void;
  /** Dialling the peer's stream found its port closed (ECONNREFUSED): its process is gone. */
  onPeerGone?(id: NodeId): void;
}

class Peer {
  private queue: Message[] = [];
  private sending = false;
  private probeTimer: NodeJS.Timeout | undefined;
  readonly pool: Pool;
  /** The stream this member dials to the peer (the peer's messages for us arrive on it). */
  private readonly reader: StreamReader;
  private readonly streamPool: Pool;
  /** The stream the peer dialled to us: our messages for it go there while it is open. */
  writer: StreamWriter | undefined;
  readonly stats: PeerStats;
  /** Since when sends to this peer succeed (undefined: the last one failed), as etcd's ActiveSince. */
  activeSince: number | undefined;

  constructor(readonly id: NodeId, readonly url: string, private readonly t: Transport) {
    this.pool = new Pool(url, {
      connections: 2, keepAliveTimeout: 30_000, headersTimeout: SEND_TIMEOUT_MS, bodyTimeout: SEND_TIMEOUT_MS, connect: peerConnect(t.tls),
    });
    this.probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
    this.stats = t.statsOf(id.toString(16));
    // Its own connection: the long GET must not hold one the pipeline and probes need.
    this.streamPool = new Pool(url, { connections: 1, connect: peerConnect(t.tls) });
    this.reader = new StreamReader({
      dispatcher: this.streamPool,
      localIdHex: t.host.memberIdHex(),
      headers: () => ({ ...t.headers(), [RAFT_TO_HEADER]: id.toString(16) }),
      receive: (msgs) => t.host.receive(msgs),
      onBytes: (n) => { this.stats.receivedBytes += n; },
      // Counted (as etcd's stream reader counts them), not logged: a peer that is down fails a
      // redial every second. A dial that finds nobody listening received nothing: not counted.
      onFailure: (what, err) => {
        if (what !== 'dial') this.stats.receivedFailures++;
        else if (errCode(err) === 'ECONNREFUSED') t.host.onPeerGone?.(id);
      },
      onUp: () => { this.activeSince ??= Date.now(); },
      onRemoved: () => t.host.onRemoved?.(),
    });
  }

  /** Messages for this peer: on its stream when one is attached, else by the pipeline. */
  sendAll(msgs: Message[]): void {
    if (this.writer !== undefined) {
      const frame = encodeFrame(msgs);
      if (this.writer.write(frame)) {
        this.stats.sentBytes += frame.length;
        this.stats.streamMessages += msgs.length;
        return;
      }
    }
    for (const m of msgs) this.send(m);
  }

  /** The peer dialled its stream: it replaces an older one (the peer redialled after a break). */
  attach(res: ServerResponse): void {
    this.writer?.close();
    this.writer = new StreamWriter(res, (w, failed) => {
      if (this.writer === w) this.writer = undefined;
      if (failed) this.stats.sentFailures++;
    });
  }

  private send(m: Message): void {
    this.stats.pipelineMessages++;
    if (this.queue.length >= MAX_QUEUED) this.queue.shift();
    this.queue.push(m);
    if (!this.sending) void this.flush();
  }

  private async flush(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
        this.queue = this.queue.length <= MAX_BATCH ? [] : this.queue.slice(MAX_BATCH);
        const body = encodeBatch(batch);
        const ok = await this.post('/raft', body, SEND_TIMEOUT_MS);
        if (!ok) {
          this.activeSince = undefined;
          this.stats.sentFailures++;
        } else {
          this.activeSince ??= Date.now();
          this.stats.sentBytes += body.length;
        }
        // An unreachable peer: wait a little instead of spinning on connection errors.
        if (!ok) await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      this.sending = false;
    }
  }

  async post(path: string, body: Buffer | NodeJS.ReadableStream, timeoutMs: number): Promise<boolean> {
    try {
      const res = await this.pool.request({
        method: 'POST', path, body: body as Buffer, headers: this.t.headers(), headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode === 410) this.t.host.onRemoved?.();
      return res.statusCode === 204;
    } catch {
      return false;
    }
  }

  private async probe(): Promise<void> {
    const start = performance.now();
    try {
      const res = await this.pool.request({ method: 'GET', path: '/raft/probing', headers: this.t.headers(), headersTimeout: SEND_TIMEOUT_MS });
      await res.body.dump();
      if (res.statusCode === 200) {
        this.t.host.onRoundTrip?.(this.id.toString(16), (performance.now() - start) / 1000);
        // Probes also tell a peer this member has no raft traffic with (follower to follower) is up.
        this.activeSince ??= Date.now();
      } else {
        this.activeSince = undefined;
      }
    } catch {
      // unreachable: no round trip to record
      this.activeSince = undefined;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.probeTimer);
    this.reader.close();
    this.writer?.close();
    await Promise.all([this.pool.destroy().catch(() => undefined), this.streamPool.destroy().catch(() => undefined)]);
  }
}

export class Transport {
  private readonly peers = new Map<NodeId, Peer>();
  private readonly servers: (Server | HttpsServer)[] = [];
  private closed = false;
  private snapshotSeq = 0;
  private readonly peerStats = new Map<string, PeerStats>();
  private readonly streamTimer: NodeJS.Timeout;

  constructor(readonly host: TransportHost, readonly tls?: PeerTls) {
    this.streamTimer = setInterval(() => {
      const now = Date.now();
      for (const p of this.peers.values()) p.writer?.tick(now);
    }, STREAM_TICK_MS);
    this.streamTimer.unref();
  }

  /** The counters of one peer (hex ID), kept across its Peer objects (URL changes). */
  statsOf(idHex: string): PeerStats {
    let s = this.peerStats.get(idHex);
    if (s === undefined) {
      s = { id: idHex, sentBytes: 0, receivedBytes: 0, sentFailures: 0, receivedFailures: 0, streamMessages: 0, pipelineMessages: 0 };
      this.peerStats.set(idHex, s);
    }
    return s;
  }

  /** Per-peer counters of the current peers. */
  stats(): PeerStats[] {
    return [...this.peers.keys()].map((id) => this.statsOf(id.toString(16)));
  }

  headers(): Record<string, string> {
    return { [CLUSTER_ID_HEADER]: this.host.clusterIdHex(), [FROM_HEADER]: this.host.memberIdHex(), 'content-type': 'application/octet-stream' };
  }

  /** Binds every peer listen URL; resolves with the bound ports. */
  async listen(urls: readonly URL[]): Promise<number[]> {
    await mkdir(this.host.snapDir, { recursive: true });
    const ports: number[] = [];
    for (const u of urls) {
      const server = u.protocol === 'https:' ? this.httpsServer() : createServer((req, res) => void this.handle(req, res));
      server.keepAliveTimeout = 60_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(u.port || 2380), u.hostname.replace(/^\[|\]$/g, ''), () => resolve());
      });
      const addr = server.address();
      ports.push(typeof addr === 'object' && addr !== null ? addr.port : 0);
      this.servers.push(server);
    }
    return ports;
  }

  /**
   * An https peer listener, as etcd's: a client certificate is required only with clientCertAuth;
   * the certificate follows the files (checked on new connections); a peer presenting a
   * certificate of another CN (allowedCn) or one the CRL revokes is cut off after the handshake.
   */
  private httpsServer(): HttpsServer {
    const t = this.tls;
    if (t === undefined) throw new Error('https peer listener without a certificate and key');
    let applied = t.files.current();
    const server = createHttpsServer({
      ...applied.options, requestCert: t.clientCertAuth, rejectUnauthorized: t.clientCertAuth,
    }, (req, res) => void this.handle(req, res));
    // Before Node's own 'connection' listener starts the handshake: the newest certificate serves it.
    server.prependListener('connection', () => {
      const now = t.files.current();
      if (now.version !== applied.version) {
        applied = now;
        server.setSecureContext(now.options);
      }
    });
    // etcd checks the CN while verifying the chain and the CRL right after the handshake; Node has
    // no hook for the first, so both cut the connection as soon as the handshake completes,
    // before a request on it is read.
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      const why = t.files.revocation(socket) ?? (t.clientCertAuth ? identityRefusal(socket, t.allowed) : undefined);
      if (why !== undefined) {
        this.host.onError?.('peer TLS', new Error(`rejected connection from ${socket.remoteAddress ?? '?'}: ${why}`));
        socket.destroy();
      }
    });
    return server;
  }

  /** Peers to talk to: id -> first peer URL (members added or removed at run time call this again). */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, p] of this.peers) {
      if (peers.get(id) !== p.url) {
        this.peers.delete(id);
        void p.close();
      }
    }
    for (const [id, url] of peers) if (!this.peers.has(id)) this.peers.set(id, new Peer(id, url, this));
  }

  /** When the connection to a peer became active (undefined: it is not). */
  activeSince(id: NodeId): number | undefined {
    return this.peers.get(id)?.activeSince;
  }

  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    // One frame (or pipeline batch) per peer for all its messages of this call, in their order.
    const byPeer = new Map<Peer, Message[]>();
    for (const m of msgs) {
      const p = this.peers.get(m.to);
      if (p === undefined) continue;
      if (m.type === 'snapshot') void this.sendSnapshot(p, m);
      else {
        const list = byPeer.get(p);
        if (list === undefined) byPeer.set(p, [m]);
        else list.push(m);
      }
    }
    for (const [p, list] of byPeer) p.sendAll(list);
  }

  /** The snapshot message (its data left empty), then the data file, in one streamed body. */
  private async sendSnapshot(p: Peer, m: Extract<Message, { type: 'snapshot' }>): Promise<void> {
    let ok = false;
    try {
      const { file, cleanup } = await this.host.snapshotFile();
      try {
        const head = encodeFrame([{ ...m, snapshot: { meta: m.snapshot.meta, data: new Uint8Array(0) } }]);
        const body = (async function* () {
          yield head;
          for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) yield chunk as Buffer;
        })();
        ok = await p.post('/raft/snapshot', body as unknown as NodeJS.ReadableStream, SNAPSHOT_TIMEOUT_MS);
      } finally {
        await cleanup();
      }
    } catch (e) {
      this.host.onError?.('snapshot send', e);
    }
    this.host.onSnapshot?.('send', p.id.toString(16), ok);
    this.host.snapshotSent(p.id, ok);
  }

  /** The leader's peer client, for forwarding a lease keep-alive. */
  async renewLeaseAt(leader: NodeId, id: bigint): Promise<number | undefined> {
    const p = this.peers.get(leader);
    if (p === undefined) return undefined;
    try {
      const res = await p.pool.request({ method: 'POST', path: '/leases', body: id.toString(), headers: this.headers(), headersTimeout: SEND_TIMEOUT_MS });
      const text = await res.body.text();
      return res.statusCode === 200 ? Number(text) : undefined;
    } catch {
      return undefined;
    }
  }

  /** A follower asks the leader to promote a learner (only the leader knows whether it caught up). */
  async promoteAt(leader: NodeId, id: bigint): Promise<string | undefined> {
    const p = this.peers.get(leader);
    if (p === undefined) return undefined;
    try {
      const res = await p.pool.request({ method: 'POST', path: `/members/promote/${id.toString(16)}`, headers: this.headers(), headersTimeout: 15_000, bodyTimeout: 15_000 });
      const text = await res.body.text();
      return res.statusCode === 200 ? '' : res.statusCode === 412 && text !== 'cluster ID mismatch\n' ? text : undefined;
    } catch {
      return undefined;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    const reply = (code: number, body = '', type = 'text/plain'): void => {
      res.writeHead(code, { 'content-type': type, [CLUSTER_ID_HEADER]: this.host.clusterIdHex() });
      res.end(body);
    };
    try {
      if (req.method === 'GET' && url === '/members') {
        reply(200, JSON.stringify(this.host.members()), 'application/json');
        return;
      }
      if (req.method === 'GET' && url === '/version') {
        reply(200, JSON.stringify({ etcdserver: '3.4.23', etcdcluster: '3.4.0' }), 'application/json');
        return;
      }
      const cid = req.headers[CLUSTER_ID_HEADER];
      if (cid !== this.host.clusterIdHex()) {
        req.resume();
        reply(412, 'cluster ID mismatch\n');
        return;
      }
      const from = String(req.headers[FROM_HEADER] ?? '');
      if (/^[0-9a-f]{1,16}$/.test(from) && this.host.isRemoved(BigInt('0x' + from))) {
        req.resume();
        reply(410, 'the member has been permanently removed from the cluster\n');
        return;
      }
      if (req.method === 'GET' && url === '/raft/probing') {
        reply(200, '{"health":"true"}', 'application/json');
        return;
      }
      if (req.method === 'GET' && url.startsWith(STREAM_PATH)) {
        this.attachStream(url.slice(STREAM_PATH.length), req, res, reply);
        return;
      }
      if (req.method === 'POST' && url === '/raft') {
        const body = await readBody(req);
        const stats = /^[0-9a-f]{1,16}$/.test(from) ? this.statsOf(from) : undefined;
        if (stats !== undefined) stats.receivedBytes += body.length;
        let msgs: Message[];
        try {
          msgs = decodeBatch(body);
        } catch (e) {
          if (stats !== undefined) stats.receivedFailures++;
          throw e;
        }
        res.writeHead(204, { [CLUSTER_ID_HEADER]: this.host.clusterIdHex() }).end();
        this.host.receive(msgs);
        return;
      }
      if (req.method === 'POST' && url === '/raft/snapshot') {
        await this.receiveSnapshot(req);
        reply(204);
        return;
      }
      const promote = /^\/members\/promote\/([0-9a-f]{1,16})$/.exec(url);
      if (req.method === 'POST' && promote !== null) {
        req.resume();
        const code = await this.host.promote(BigInt('0x' + promote[1]!));
        reply(code === '' ? 200 : 412, code);
        return;
      }
      if (req.method === 'POST' && url === '/leases') {
        const ttl = this.host.renewLease(BigInt((await readBody(req)).toString()));
        reply(ttl < 0 ? 404 : 200, String(ttl));
        return;
      }
      req.resume();
      reply(404, 'not found\n');
    } catch (e) {
      if (!res.headersSent) reply(e instanceof CodecError ? 400 : 500, `${e instanceof Error ? e.message : String(e)}\n`);
      else res.destroy();
    }
  }

  /**
   * A peer dials its stream (cluster ID and removal already checked, as for every request): the
   * checks of etcd's stream handler, then this response stays open and carries our messages.
   */
  private attachStream(fromHex: string, req: IncomingMessage, res: ServerResponse, reply: (code: number, body?: string) => void): void {
    req.resume();
    if (!/^[0-9a-f]{1,16}$/.test(fromHex)) {
      reply(400, 'invalid from\n');
      return;
    }
    const to = req.headers[RAFT_TO_HEADER];
    if (to !== undefined && to !== this.host.memberIdHex()) {
      reply(412, 'to field mismatch\n');
      return;
    }
    const from = BigInt('0x' + fromHex);
    if (this.host.isRemoved(from)) {
      reply(410, 'removed member\n');
      return;
    }
    const p = this.peers.get(from);
    if (p === undefined || this.closed) {
      reply(404, 'error sender not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', [CLUSTER_ID_HEADER]: this.host.clusterIdHex() });
    // No delay between a frame's write and its packet: a heartbeat must not wait for more data.
    res.socket?.setNoDelay(true);
    p.attach(res);
  }

  private async receiveSnapshot(req: IncomingMessage): Promise<void> {
    const file = join(this.host.snapDir, `incoming-${process.pid}-${++this.snapshotSeq}.db`);
    let headLen = -1;
    let head: Buffer = Buffer.alloc(0);
    const out = createWriteStream(file);
    try {
      // The first 4 + n bytes are the message; the rest is the data file, streamed to disk.
      await pipeline(req, async function* (src: AsyncIterable<Buffer>) {
        for await (let chunk of src) {
          if (headLen < 0 || head.length < headLen) {
            head = Buffer.concat([head, chunk]);
            if (headLen < 0 && head.length >= 4) headLen = head.readUInt32BE(0) + 4;
            if (headLen < 0 || head.length < headLen) continue;
            chunk = head.subarray(headLen);
            head = head.subarray(0, headLen);
          }
          if (chunk.length > 0) yield chunk;
        }
      }, out);
      const [m] = decodeBatch(head.subarray(4));
      if (m?.type !== 'snapshot') throw new CodecError('snapshot: no snapshot message');
      this.host.onSnapshot?.('receive', m.from.toString(16), true);
      this.host.receiveSnapshot(m, file);
    } catch (e) {
      this.host.onSnapshot?.('receive', String(req.headers[FROM_HEADER] ?? ''), false);
      await rm(file, { force: true });
      throw e;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.streamTimer);
    for (const p of this.peers.values()) p.writer?.close();
    for (const s of this.servers) s.closeAllConnections();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await Promise.all([...this.peers.values()].map((p) => p.close()));
    this.peers.clear();
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** GET <peer>/members of an existing cluster (a joining member's discovery). */
export async function fetchMembers(peerUrl: string, tls?: PeerTls): Promise<{ clusterIdHex: string; members: MemberInfo[] }> {
  const pool = new Pool(new URL(peerUrl).origin, { connect: peerConnect(tls, SEND_TIMEOUT_MS), headersTimeout: SEND_TIMEOUT_MS, bodyTimeout: SEND_TIMEOUT_MS });
  try {
    const res = await pool.request({ method: 'GET', path: '/members' });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`GET ${peerUrl}/members: ${res.statusCode}`);
    }
    const cid = res.headers[CLUSTER_ID_HEADER];
    return { clusterIdHex: typeof cid === 'string' ? cid : '', members: (await res.body.json()) as MemberInfo[] };
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}
