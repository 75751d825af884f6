// Unary gRPC calls to one etcd member straight over node:http2, without grpc-js. A unary call is a
// POST of one length-prefixed message answered by one message and a grpc-status trailer; grpc-js
// spends most of a gateway request's CPU around that (resolving/load-balancing call layers, call
// credentials promises, filter stacks, Metadata objects), so the unary hot path skips it. Streams
// (Watch, LeaseKeepAlive, Snapshot) stay on grpc-js (pool.ts), where its machinery is amortized.
//
// Errors are grpc-js ServiceError look-alikes (code, details), so errors.ts reads both the same.
// In particular a call whose connection was never established fails with UNAVAILABLE
// "No connection established ...", grpc-js's wording, which errors.ts treats as "never executed"
// (safe to resend even a write).
import * as http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import type { UpstreamTls } from './pool.js';

/** What one unary method needs: its path and codecs (the generated `*Service` entries have them). */
export interface UnaryMethod<Q, R> {
  readonly path: string;
  readonly requestSerialize: (q: Q) => Buffer;
  readonly responseDeserialize: (b: Buffer) => R;
}

/** A failed call, shaped like grpc-js's ServiceError (errors.ts reads code and details). */
export class UnaryError extends Error {
  constructor(readonly code: status, readonly details: string) {
    super(`${code} ${status[code] ?? 'UNKNOWN'}: ${details}`);
  }
}

const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;
/** Large windows: a big range response must not wait for WINDOW_UPDATE round trips. */
const WINDOW_BYTES = 64 * 1024 * 1024;

const {
  HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE, HTTP2_HEADER_STATUS,
  NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL,
} = http2.constants;

/** grpc-timeout: at most 8 digits and a unit (gRPC over HTTP/2 spec). */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  return m < 1e8 ? `${m}m` : `${Math.ceil(m / 1000)}S`;
}

function decodeMessage(raw: string | string[] | undefined): string {
  const s = Array.isArray(raw) ? raw.join(',') : raw ?? '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** One HTTP/2 connection at a time to one member, opened on demand and again after it breaks. */
class Connection {
  readonly session: http2.ClientHttp2Session;
  connected = false;
  lastError = '';
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(authority: string, tls: UpstreamTls | undefined, onGone: (c: Connection) => void) {
    const opts: http2.SecureClientSessionOptions = {
      settings: { initialWindowSize: WINDOW_BYTES, enablePush: false },
      // nghttp2's default (10 MB) refuses new streams when many large answers are in flight at once.
      maxSessionMemory: 64,
    };
    if (tls !== undefined) {
      if (tls.ca !== undefined) opts.ca = tls.ca;
      if (tls.cert !== undefined) opts.cert = tls.cert;
      if (tls.key !== undefined) opts.key = tls.key;
      opts.ALPNProtocols = ['h2'];
    }
    this.session = http2.connect(`${tls === undefined ? 'http' : 'https'}://${authority}`, opts);
    const s = this.session;
    s.on('connect', () => {
      // 'connect' can still come after close() destroyed the session (a TLS 1.3 handshake the
      // member then refuses, a test tearing down): setLocalWindowSize would throw out of this
      // listener (ERR_HTTP2_INVALID_SESSION), an uncaught exception.
      if (s.destroyed || s.closed) return;
      this.connected = true;
      s.setLocalWindowSize(WINDOW_BYTES);
      // A member that vanished without closing the connection (power loss, partition) is noticed.
      this.pingTimer = setInterval(() => this.ping(), KEEPALIVE_INTERVAL_MS).unref();
    });
    s.on('error', (e: Error) => { this.lastError = e.message; });
    // No new streams after GOAWAY (etcd stopping): the next call opens a fresh connection.
    s.on('goaway', () => {
      this.lastError ||= 'GOAWAY received';
      onGone(this);
      s.close(); // lets the calls on it finish, then closes (the ping timer goes with it)
    });
    s.on('close', () => {
      if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
      onGone(this);
    });
    // Idle connections do not keep the process alive (an open call holds its own deadline timer).
    s.unref();
  }

  private ping(): void {
    const s = this.session;
    if (s.destroyed) return;
    const timer = setTimeout(() => { this.lastError = 'keepalive ping timed out'; s.destroy(); }, KEEPALIVE_TIMEOUT_MS).unref();
    const sent = s.ping((err) => {
      clearTimeout(timer);
      if (err !== null) {
        this.lastError = `keepalive ping failed: ${err.message}`;
        s.destroy();
      }
    });
    if (!sent) clearTimeout(timer);
  }
}

export class UnaryChannel {
  private conn: Connection | undefined;
  private closed = false;

  constructor(readonly address: string, private readonly tls: UpstreamTls | undefined, private readonly maxSendBytes: number) {}

  private connection(): Connection {
    if (this.conn !== undefined && !this.conn.session.destroyed && !this.conn.session.closed) return this.conn;
    const c = new Connection(this.address, this.tls, (gone) => { if (this.conn === gone) this.conn = undefined; });
    this.conn = c;
    return c;
  }

  /**
   * One call: `token` goes as etcd's `token` metadata, `hasleader` always (a member without a
   * leader refuses instead of hanging), the deadline both as grpc-timeout and as a local timer.
   */
  call<Q, R>(m: UnaryMethod<Q, R>, req: Q, token: string | undefined, deadline: number, cb: (err: UnaryError | null, resp?: R) => void): void {
    if (this.closed) return cb(new UnaryError(status.UNAVAILABLE, 'Channel has been shut down'));
    const msg = m.requestSerialize(req);
    if (msg.length > this.maxSendBytes) {
      return cb(new UnaryError(status.RESOURCE_EXHAUSTED, `Sent message larger than max (${msg.length} vs. ${this.maxSendBytes})`));
    }
    const left = deadline - Date.now();
    if (left <= 0) return cb(new UnaryError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    const conn = this.connection();
    const headers: http2.OutgoingHttpHeaders = {
      [HTTP2_HEADER_METHOD]: 'POST',
      [HTTP2_HEADER_PATH]: m.path,
      [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      [HTTP2_HEADER_TE]: 'trailers',
      'grpc-timeout': grpcTimeout(left),
      hasleader: 'true',
    };
    if (token !== undefined) headers.token = token;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = conn.session.request(headers);
    } catch (e) {
      // The session went away between the check above and now (GOAWAY): nothing was sent.
      return cb(new UnaryError(status.UNAVAILABLE, `No connection established. Last error: ${(e as Error).message}`));
    }
    const wasConnected = conn.connected;
    let done = false;
    let grpcStatus: number | undefined;
    let grpcMessage = '';
    let httpStatus = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: UnaryError | null, resp?: R): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cb(err, resp);
    };
    const timer = setTimeout(() => {
      finish(new UnaryError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      stream.close(NGHTTP2_CANCEL);
    }, left);
    const takeStatus = (h: http2.IncomingHttpHeaders): void => {
      const st = h['grpc-status'];
      if (st !== undefined) {
        grpcStatus = Number(st);
        grpcMessage = decodeMessage(h['grpc-message']);
      }
    };
    stream.on('response', (h) => {
      httpStatus = Number(h[HTTP2_HEADER_STATUS]);
      takeStatus(h); // a trailers-only answer (an error) carries its status in the headers
    });
    stream.on('trailers', takeStatus);
    stream.on('data', (c: Buffer) => { chunks.push(c); size += c.length; });
    stream.on('error', () => undefined); // reported through 'close' below
    stream.on('close', () => {
      if (done) return;
      if (grpcStatus === undefined) {
        const code = stream.rstCode;
        if (!wasConnected && !conn.connected) {
          return finish(new UnaryError(status.UNAVAILABLE, `No connection established. Last error: ${conn.lastError || 'connection failed'}`));
        }
        if (code === NGHTTP2_REFUSED_STREAM) return finish(new UnaryError(status.UNAVAILABLE, 'Stream refused by server'));
        if (httpStatus !== 0 && httpStatus !== 200) return finish(new UnaryError(status.UNKNOWN, `Received HTTP status code ${httpStatus}`));
        return finish(new UnaryError(status.UNAVAILABLE, `Connection dropped${conn.lastError ? `: ${conn.lastError}` : ''} (stream reset with code ${code})`));
      }
      if (grpcStatus !== status.OK) return finish(new UnaryError(grpcStatus, grpcMessage));
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      if (body.length < 5 || body[0] !== 0) return finish(new UnaryError(status.INTERNAL, 'malformed or compressed response message'));
      const len = body.readUInt32BE(1);
      if (body.length < 5 + len) return finish(new UnaryError(status.INTERNAL, 'truncated response message'));
      let resp: R;
      try {
        resp = m.responseDeserialize(body.subarray(5, 5 + len));
      } catch (e) {
        return finish(new UnaryError(status.INTERNAL, `Response message parsing error: ${(e as Error).message}`));
      }
      finish(null, resp);
    });
    const frame = Buffer.allocUnsafe(5 + msg.length);
    frame[0] = 0;
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    stream.end(frame);
  }

  close(): void {
    this.closed = true;
    this.conn?.session.destroy();
    this.conn = undefined;
  }
}
