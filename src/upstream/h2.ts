// The HTTP/2 client (RFC 9113) under the gateway's unary gRPC calls to etcd: one connection, requests
// of one HEADERS block and a body, answers of headers, data and trailers. node:http2's client
// spent about a quarter of a gateway put's CPU on the objects around each request (a Duplex stream,
// async-resource wrappers, header objects); this keeps per request only what a unary call needs.
//
// What it speaks: the connection preface and SETTINGS (acknowledged both ways; the server's
// initial window, frame size and stream limit are honoured), flow control both ways (64 MiB
// receive windows, replenished at half; sends wait for the server's window), HEADERS with
// CONTINUATION, padding and priority fields, HPACK with the server's dynamic table (util/hpack.ts),
// RST_STREAM both ways, PING (answered; ours as keepalive), GOAWAY (streams above its last id are
// refused, the connection takes no more), unknown frame types ignored. Any protocol violation by
// the server ends the connection and fails its streams. Server push is refused in SETTINGS.
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, frameBlock, frameHeader, GOAWAY, HEADERS, headersFragment, MIN_MAX_FRAME, PING, PREFACE,
  PUSH_PROMISE, RST_STREAM, SETTINGS, unpad, WINDOW_UPDATE,
} from '../util/h2-frames.js';
import { HpackDecoder, type HeaderField } from '../util/hpack.js';
import type { UpstreamTls } from './pool.js';

/** RST_STREAM / GOAWAY error codes this side uses or reads. */
export const NO_ERROR = 0;
export const PROTOCOL_ERROR = 1;
const FLOW_CONTROL_ERROR = 3;
export const REFUSED_STREAM = 7;
export const CANCEL = 8;
const DEFAULT_WINDOW = 65_535;
const MAX_STREAM_ID = 2 ** 31 - 1;
/** Receive windows (connection and each stream): a big answer must not wait for round trips. */
export const WINDOW_BYTES = 64 * 1024 * 1024;
/** A header block (HEADERS + CONTINUATION) larger than this ends the connection. */
const MAX_HEADER_BLOCK = 1 << 20;
/** An answer larger than this fails its call (RESOURCE_EXHAUSTED), as grpc's receive limit. */
export const MAX_RESPONSE_BYTES = 2 ** 31 - 1;
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;

/** How one request ended, for the caller to turn into its own error or answer. */
export interface H2Result {
  /** The response headers' :status (0: none came). */
  readonly status: number;
  /** Response headers, then trailers, in arrival order. */
  readonly fields: readonly HeaderField[];
  readonly body: Buffer;
  /** END_STREAM from the server: the answer is complete. */
  readonly ended: boolean;
  /**
   * The stream's reset code, if reset: theirs; CANCEL for an answer over MAX_RESPONSE_BYTES; or
   * REFUSED_STREAM for a stream the server certainly did not process (RFC 9113 8.7: its own
   * REFUSED_STREAM, one above a GOAWAY's last stream ID, or one never sent).
   */
  readonly rstCode: number | undefined;
  /** The answer went over MAX_RESPONSE_BYTES (the stream was canceled). */
  readonly tooLarge?: boolean;
}

interface Stream {
  readonly id: number;
  readonly done: (r: H2Result) => void;
  /** Request bytes not yet sent (headers go at once; the body waits for windows). */
  body: Buffer;
  sent: number;
  sendWindow: number;
  recvUnacked: number;
  status: number;
  fields: HeaderField[];
  chunks: Buffer[];
  size: number;
  headersSeen: boolean;
}

/** A whole frame in one buffer (control frames, header-block pieces). */
function frame(type: number, flags: number, streamId: number, payload: Buffer | undefined): Buffer {
  const header = frameHeader(payload?.length ?? 0, type, flags, streamId);
  return payload === undefined ? header : Buffer.concat([header, payload]);
}

function u32Frame(type: number, streamId: number, value: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(value);
  return frame(type, 0, streamId, p);
}

/** Splits "host:port" / "[v6]:port" into connect options. */
function hostPort(authority: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(authority) ?? /^([^:]+):(\d+)$/.exec(authority);
  if (m === null) throw new Error(`bad upstream address ${authority}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export class H2Connection {
  /** The socket connected (and TLS agreed on h2): requests written from now on may reach the server. */
  connected = false;
  lastError = '';
  /** No new requests: GOAWAY came, stream IDs ran out, or the connection ended. */
  closing = false;
  private ended = false;
  private goneSaid = false;
  private readonly socket: Socket;
  private readonly streams = new Map<number, Stream>();
  /** Streams waiting for the server's stream limit. */
  private readonly queued: { s: Stream; block: Buffer }[] = [];
  /** Streams with body bytes waiting for a window. */
  private readonly blocked = new Set<Stream>();
  private readonly decoder = new HpackDecoder();
  private nextId = 1;
  private out: Buffer[] = [];
  private flushing = false;
  private pending: Buffer | undefined;
  /** A header block being assembled from HEADERS + CONTINUATION frames. */
  private block: { streamId: number; endStream: boolean; parts: Buffer[]; size: number } | undefined;
  private sendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MIN_MAX_FRAME;
  private peerMaxStreams = Infinity;
  private recvUnacked = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingTimeout: NodeJS.Timeout | undefined;

  constructor(readonly authority: string, tls: UpstreamTls | undefined, private readonly onGone: (c: H2Connection) => void) {
    const { host, port } = hostPort(authority);
    if (tls === undefined) {
      this.socket = netConnect({ host, port, noDelay: true }, () => this.onConnect());
    } else {
      const s: TLSSocket = tlsConnect({
        host, port, ALPNProtocols: ['h2'], servername: isIP(host) === 0 ? host : undefined,
        ...(tls.ca !== undefined && { ca: tls.ca }), ...(tls.cert !== undefined && { cert: tls.cert }), ...(tls.key !== undefined && { key: tls.key }),
      }, () => {
        if (s.alpnProtocol !== 'h2') return this.destroy(`the server did not agree on HTTP/2 (ALPN ${String(s.alpnProtocol)})`);
        this.onConnect();
      });
      s.setNoDelay(true);
      this.socket = s;
    }
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e: Error) => { this.lastError ||= e.message; });
    this.socket.on('close', () => this.destroy(this.lastError || 'connection closed'));
    // Idle connections do not keep the process alive (an open call holds its own deadline timer).
    this.socket.unref();
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(WINDOW_BYTES, 8);
    this.out.push(PREFACE, frame(SETTINGS, 0, 0, settings), u32Frame(WINDOW_UPDATE, 0, WINDOW_BYTES - DEFAULT_WINDOW));
  }

  /**
   * Starts a request: `block` (HPACK, see encodeLiterals; pseudo-headers first) as its header
   * block, then `body`, ending the stream. Returns the stream ID (to cancel), or undefined when
   * this connection takes no more.
   */
  request(block: Buffer, body: Buffer, done: (r: H2Result) => void): number | undefined {
    if (this.closing) return undefined;
    const id = this.nextId;
    this.nextId += 2;
    const s: Stream = {
      id, done, body, sent: 0, sendWindow: 0, recvUnacked: 0, status: 0, fields: [], chunks: [], size: 0, headersSeen: false,
    };
    if (this.streams.size >= this.peerMaxStreams) this.queued.push({ s, block });
    else this.open(s, block);
    // Stream IDs run out: this one still goes, the next request opens another connection.
    if (this.nextId > MAX_STREAM_ID) this.retire();
    return id;
  }

  /** Gives up on a stream (its deadline passed): RST_STREAM CANCEL; its callback is not called. */
  cancel(id: number): void {
    const q = this.queued.findIndex((e) => e.s.id === id);
    if (q >= 0) {
      this.queued.splice(q, 1);
      return;
    }
    const s = this.streams.get(id);
    if (s === undefined) return;
    this.forget(s);
    this.write(u32Frame(RST_STREAM, id, CANCEL));
  }

  /**
   * Ends the connection now; open streams fail (their results carry no END_STREAM), queued ones
   * (never sent) as refused. `flushFirst`: what is written so far (a GOAWAY) leaves first.
   */
  destroy(reason: string, flushFirst = false): void {
    if (this.ended) return;
    this.ended = true;
    this.closing = true;
    this.lastError ||= reason;
    clearInterval(this.pingTimer);
    clearTimeout(this.pingTimeout);
    if (flushFirst && this.connected && this.out.length > 0) {
      this.socket.end(Buffer.concat(this.out));
      this.out = [];
    } else this.socket.destroy();
    const open = [...this.streams.values()];
    const queued = this.queued.map((e) => e.s);
    this.streams.clear();
    this.queued.length = 0;
    this.blocked.clear();
    this.sayGone();
    for (const s of open) this.finish(s, false, undefined);
    for (const s of queued) this.finish(s, false, REFUSED_STREAM);
  }

  private sayGone(): void {
    if (this.goneSaid) return;
    this.goneSaid = true;
    this.onGone(this);
  }

  private onConnect(): void {
    if (this.ended) return;
    this.connected = true;
    this.pingTimer = setInterval(() => this.ping(), KEEPALIVE_INTERVAL_MS).unref();
    this.flush();
  }

  /** No new streams (from here on, also from callbacks it runs); the connection ends once the open ones have. */
  private retire(): void {
    this.closing = true;
    this.sayGone();
    this.endIfIdle();
  }

  private endIfIdle(): void {
    if (this.closing && this.streams.size === 0 && this.queued.length === 0 && !this.ended) {
      this.flush();
      this.socket.end();
    }
  }

  private open(s: Stream, block: Buffer): void {
    this.streams.set(s.id, s);
    s.sendWindow = this.peerInitialWindow;
    for (const f of frameBlock(s.id, s.body.length === 0 ? END_STREAM : 0, undefined, block, this.peerMaxFrame)) this.write(f);
    if (s.body.length > 0) this.sendBody(s);
  }

  /** Sends as much of the stream's body as the windows allow; the rest waits for WINDOW_UPDATE. */
  private sendBody(s: Stream): void {
    while (s.sent < s.body.length) {
      const n = Math.min(s.body.length - s.sent, s.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (n <= 0) {
        this.blocked.add(s);
        return;
      }
      const last = s.sent + n === s.body.length;
      this.write(frameHeader(n, DATA, last ? END_STREAM : 0, s.id));
      this.write(s.body.subarray(s.sent, s.sent + n));
      s.sent += n;
      s.sendWindow -= n;
      this.sendWindow -= n;
    }
    this.blocked.delete(s);
  }

  private write(f: Buffer): void {
    this.out.push(f);
    if (this.flushing || !this.connected) return;
    this.flushing = true;
    // Everything written in this turn of the event loop (the requests of every socket read in it,
    // many under load) leaves in one socket write: fewer writes, fewer wake-ups of etcd.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    if (this.ended || this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    // One write: the buffers are small frames and request bodies (a big body is split by windows).
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  /**
   * A keepalive ping, only while calls wait for answers: etcd's server (PermitWithoutStream false)
   * counts pings on an idle connection as abuse and ends the connection after a few.
   */
  private ping(): void {
    if (this.pingTimeout !== undefined || this.ended || this.streams.size === 0) return;
    this.pingTimeout = setTimeout(() => this.destroy('keepalive ping timed out'), KEEPALIVE_TIMEOUT_MS).unref();
    this.write(frame(PING, 0, 0, Buffer.alloc(8)));
  }

  private fail(reason: string, code = PROTOCOL_ERROR): void {
    if (this.ended) return;
    this.lastError = reason;
    const p = Buffer.alloc(8);
    p.writeUInt32BE(code, 4);
    this.out.push(frame(GOAWAY, 0, 0, p));
    this.destroy(reason, true);
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    while (buf.length >= 9 && !this.ended) {
      const len = buf.readUIntBE(0, 3);
      // The largest frame this side accepts: it does not raise SETTINGS_MAX_FRAME_SIZE.
      if (len > MIN_MAX_FRAME) return this.fail(`frame of ${len} bytes (FRAME_SIZE_ERROR)`);
      if (buf.length < 9 + len) break;
      const type = buf[3]!;
      const flags = buf[4]!;
      const streamId = buf.readUInt32BE(5) & 0x7fffffff;
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      this.onFrame(type, flags, streamId, payload);
    }
    // net and tls hand out a fresh buffer per read: keeping a view of the partial frame is safe.
    if (buf.length > 0 && !this.ended) this.pending = buf;
  }

  private onFrame(type: number, flags: number, streamId: number, p: Buffer): void {
    if (this.block !== undefined && (type !== CONTINUATION || streamId !== this.block.streamId)) {
      return this.fail('header block interrupted (PROTOCOL_ERROR)');
    }
    switch (type) {
      case DATA: return this.onDataFrame(flags, streamId, p);
      case HEADERS: {
        if (streamId === 0) return this.fail('HEADERS on stream 0');
        const h = headersFragment(flags, p);
        if (h === undefined) return this.fail('bad HEADERS padding or priority');
        this.block = { streamId, endStream: (flags & END_STREAM) !== 0, parts: [h.fragment], size: h.fragment.length };
        if (flags & END_HEADERS) this.onHeaderBlock();
        return;
      }
      case CONTINUATION:
        if (this.block === undefined) return this.fail('CONTINUATION without HEADERS');
        this.block.parts.push(p);
        if ((this.block.size += p.length) > MAX_HEADER_BLOCK) return this.fail('header block too large', 11 /* ENHANCE_YOUR_CALM */);
        if (flags & END_HEADERS) this.onHeaderBlock();
        return;
      case RST_STREAM: {
        if (p.length !== 4 || streamId === 0) return this.fail('bad RST_STREAM');
        const s = this.streams.get(streamId);
        if (s !== undefined) {
          this.forget(s);
          this.finish(s, false, p.readUInt32BE(0));
        }
        return;
      }
      case SETTINGS:
        if (streamId !== 0 || p.length % 6 !== 0) return this.fail('bad SETTINGS');
        if (flags & ACK) return;
        for (let at = 0; at < p.length && !this.ended; at += 6) this.setting(p.readUInt16BE(at), p.readUInt32BE(at + 2));
        if (this.ended) return;
        this.write(frame(SETTINGS, ACK, 0, undefined));
        this.startQueued();
        return;
      case PUSH_PROMISE:
        return this.fail('PUSH_PROMISE after ENABLE_PUSH=0');
      case PING:
        if (p.length !== 8 || streamId !== 0) return this.fail('bad PING');
        if (flags & ACK) {
          clearTimeout(this.pingTimeout);
          this.pingTimeout = undefined;
        } else this.write(frame(PING, ACK, 0, p));
        return;
      case GOAWAY: {
        if (p.length < 8 || streamId !== 0) return this.fail('bad GOAWAY');
        const last = p.readUInt32BE(0) & 0x7fffffff;
        const code = p.readUInt32BE(4);
        const debug = p.subarray(8).toString('latin1');
        this.lastError ||= `GOAWAY received (code ${code}${debug ? `: ${debug}` : ''})`;
        // Closing first: callbacks below may start calls, which must go to a new connection.
        this.closing = true;
        this.sayGone();
        const refused = [...this.streams.values()].filter((s) => s.id > last);
        const queued = this.queued.splice(0).map((e) => e.s);
        for (const s of refused) this.forget(s);
        for (const s of [...refused, ...queued]) this.finish(s, false, REFUSED_STREAM);
        this.endIfIdle();
        return;
      }
      case WINDOW_UPDATE: {
        if (p.length !== 4) return this.fail('bad WINDOW_UPDATE');
        const inc = p.readUInt32BE(0) & 0x7fffffff;
        if (inc === 0) return streamId === 0 ? this.fail('WINDOW_UPDATE of 0') : undefined;
        if (streamId === 0) {
          if ((this.sendWindow += inc) > 0x7fffffff) return this.fail('connection window over 2^31-1', FLOW_CONTROL_ERROR);
          for (const s of [...this.blocked]) this.sendBody(s);
        } else {
          const s = this.streams.get(streamId);
          if (s === undefined) return;
          if ((s.sendWindow += inc) > 0x7fffffff) return this.fail('stream window over 2^31-1', FLOW_CONTROL_ERROR);
          if (this.blocked.has(s)) this.sendBody(s);
        }
        return;
      }
      default:
        return; // PRIORITY and unknown types: ignored (RFC 9113 4.1, 5.5)
    }
  }

  private setting(id: number, value: number): void {
    switch (id) {
      case 0x3: // MAX_CONCURRENT_STREAMS
        this.peerMaxStreams = value;
        break;
      case 0x4: { // INITIAL_WINDOW_SIZE: applies to open streams by its change (RFC 9113 6.9.2)
        if (value > 0x7fffffff) return this.fail('INITIAL_WINDOW_SIZE too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
        for (const s of [...this.blocked]) this.sendBody(s);
        break;
      }
      case 0x5: // MAX_FRAME_SIZE
        if (value < MIN_MAX_FRAME || value > 16_777_215) return this.fail('bad MAX_FRAME_SIZE');
        this.peerMaxFrame = value;
        break;
      default: // HEADER_TABLE_SIZE (we never index), ENABLE_PUSH, MAX_HEADER_LIST_SIZE, unknown
        break;
    }
  }

  private onDataFrame(flags: number, streamId: number, p: Buffer): void {
    if (streamId === 0) return this.fail('DATA on stream 0');
    // Padding counts against the windows too; more than the window we gave is a violation.
    this.recvUnacked += p.length;
    if (this.recvUnacked > WINDOW_BYTES) return this.fail('DATA beyond the connection window', FLOW_CONTROL_ERROR);
    if (this.recvUnacked >= WINDOW_BYTES / 2) {
      this.write(u32Frame(WINDOW_UPDATE, 0, this.recvUnacked));
      this.recvUnacked = 0;
    }
    const body = unpad(flags, p);
    if (body === undefined) return this.fail('bad padding');
    const s = this.streams.get(streamId);
    if (s === undefined) return; // canceled by us: its bytes only counted for the connection
    if (!s.headersSeen) return this.fail('DATA before HEADERS');
    if ((s.recvUnacked += p.length) > WINDOW_BYTES) return this.fail('DATA beyond the stream window', FLOW_CONTROL_ERROR);
    if (body.length > 0) {
      if (s.size + body.length > MAX_RESPONSE_BYTES) {
        this.cancel(s.id);
        s.chunks = [];
        s.done({ status: s.status, fields: s.fields, body: Buffer.alloc(0), ended: false, rstCode: CANCEL, tooLarge: true });
        return;
      }
      s.chunks.push(body);
      s.size += body.length;
    }
    if (flags & END_STREAM) return this.complete(s);
    if (s.recvUnacked >= WINDOW_BYTES / 2) {
      this.write(u32Frame(WINDOW_UPDATE, s.id, s.recvUnacked));
      s.recvUnacked = 0;
    }
  }

  private onHeaderBlock(): void {
    const b = this.block!;
    this.block = undefined;
    let fields: HeaderField[];
    try {
      // Decoded even for a stream we canceled: the dynamic table must follow every block.
      fields = this.decoder.decode(b.parts.length === 1 ? b.parts[0]! : Buffer.concat(b.parts));
    } catch (e) {
      return this.fail(`bad header block: ${(e as Error).message} (COMPRESSION_ERROR)`);
    }
    const s = this.streams.get(b.streamId);
    if (s === undefined) return;
    if (!s.headersSeen) {
      s.headersSeen = true;
      const st = fields.find((f) => f.name === ':status');
      s.status = st === undefined ? 0 : Number(st.value);
    } else if (!b.endStream) return this.fail('trailers without END_STREAM');
    for (const f of fields) s.fields.push(f);
    if (b.endStream) this.complete(s);
  }

  private complete(s: Stream): void {
    this.forget(s);
    // The server answered before taking the whole request (an early error): stop sending.
    if (s.sent < s.body.length) this.write(u32Frame(RST_STREAM, s.id, NO_ERROR));
    this.finish(s, true, undefined);
  }

  private forget(s: Stream): void {
    this.streams.delete(s.id);
    this.blocked.delete(s);
    this.startQueued();
    this.endIfIdle();
  }

  private startQueued(): void {
    while (this.queued.length > 0 && this.streams.size < this.peerMaxStreams && !this.closing) {
      const { s, block } = this.queued.shift()!;
      this.open(s, block);
    }
  }

  private finish(s: Stream, ended: boolean, rstCode: number | undefined): void {
    const body = s.chunks.length === 1 ? s.chunks[0]! : Buffer.concat(s.chunks, s.size);
    s.chunks = [];
    s.done({ status: s.status, fields: s.fields, body, ended, rstCode });
  }
}
