// Unary gRPC calls to one etcd member over this project's HTTP/2 client (h2.ts), without grpc-js.
// A unary call is a POST of one length-prefixed message answered by one message and a grpc-status
// trailer; grpc-js spends most of a gateway request's CPU around that (resolving/load-balancing
// call layers, call credentials promises, filter stacks, Metadata objects), so the unary hot path
// skips it. Streams (Watch, LeaseKeepAlive, Snapshot) stay on grpc-js (pool.ts), where its
// machinery is amortized.
//
// Errors are grpc-js ServiceError look-alikes (code, details), so errors.ts reads both the same.
// In particular a call whose connection was never established fails with UNAVAILABLE
// "No connection established ...", grpc-js's wording, which errors.ts treats as "never executed"
// (safe to resend even a write).
import { status } from '@grpc/grpc-js';
import { grpcFrame, grpcMessageDecode } from '../util/grpc-message.js';
import { encodeLiterals, type HeaderField } from '../util/hpack.js';
import { H2Connection, MAX_RESPONSE_BYTES, REFUSED_STREAM, type H2Result } from './h2.js';
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

/** grpc-timeout: at most 8 digits and a unit (gRPC over HTTP/2 spec). */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  return m < 1e8 ? `${m}m` : `${Math.ceil(m / 1000)}S`;
}


function field(name: string, value: string): HeaderField {
  return { name, value, neverIndex: false };
}

/** The regular headers every call sends (after the pseudo-headers). */
const FIXED = encodeLiterals([field('content-type', 'application/grpc'), field('te', 'trailers'), field('hasleader', 'true')]);

export class UnaryChannel {
  private conn: H2Connection | undefined;
  private closed = false;
  /** The request header block's fixed parts, encoded once: pseudo-headers, then :path by method, then the rest. */
  private readonly pseudo: Buffer;
  private readonly paths = new Map<string, Buffer>();

  constructor(readonly address: string, private readonly tls: UpstreamTls | undefined, private readonly maxSendBytes: number) {
    this.pseudo = encodeLiterals([field(':method', 'POST'), field(':scheme', tls === undefined ? 'http' : 'https'), field(':authority', address)]);
  }

  private headerBlock(path: string, timeoutMs: number, token: string | undefined): Buffer {
    let p = this.paths.get(path);
    if (p === undefined) this.paths.set(path, (p = encodeLiterals([field(':path', path)])));
    const perCall = [field('grpc-timeout', grpcTimeout(timeoutMs))];
    if (token !== undefined) perCall.push(field('token', token));
    return Buffer.concat([this.pseudo, p, FIXED, encodeLiterals(perCall)]);
  }

  private connection(): H2Connection {
    if (this.conn !== undefined && !this.conn.closing) return this.conn;
    const c = new H2Connection(this.address, this.tls, (gone) => { if (this.conn === gone) this.conn = undefined; });
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
    const block = this.headerBlock(m.path, left, token);
    const wasConnected = conn.connected;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (err: UnaryError | null, resp?: R): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cb(err, resp);
    };
    const id = conn.request(block, grpcFrame(msg), (r) => finish(...this.outcome(m, r, conn, wasConnected)));
    if (id === undefined) {
      // The connection stopped taking streams between the check above and now: nothing was sent.
      return cb(new UnaryError(status.UNAVAILABLE, `No connection established. Last error: ${conn.lastError || 'connection closing'}`));
    }
    timer = setTimeout(() => {
      finish(new UnaryError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      conn.cancel(id);
    }, left);
  }

  /** A finished stream as the call's error or answer. */
  private outcome<Q, R>(m: UnaryMethod<Q, R>, r: H2Result, conn: H2Connection, wasConnected: boolean): [UnaryError | null, R?] {
    let grpcStatus: number | undefined;
    let grpcMessage = '';
    for (const f of r.fields) {
      if (f.name === 'grpc-status') grpcStatus = Number(f.value);
      else if (f.name === 'grpc-message') grpcMessage = grpcMessageDecode(f.value);
    }
    if (r.tooLarge === true) return [new UnaryError(status.RESOURCE_EXHAUSTED, `Received message larger than max (over ${MAX_RESPONSE_BYTES})`)];
    if (grpcStatus === undefined || !r.ended) {
      if (!wasConnected && !conn.connected) {
        return [new UnaryError(status.UNAVAILABLE, `No connection established. Last error: ${conn.lastError || 'connection failed'}`)];
      }
      if (r.rstCode === REFUSED_STREAM) return [new UnaryError(status.UNAVAILABLE, 'Stream refused by server')];
      if (r.status !== 0 && r.status !== 200) return [new UnaryError(status.UNKNOWN, `Received HTTP status code ${r.status}`)];
      const why = r.rstCode !== undefined ? ` (stream reset with code ${r.rstCode})` : '';
      return [new UnaryError(status.UNAVAILABLE, `Connection dropped${conn.lastError ? `: ${conn.lastError}` : ''}${why}`)];
    }
    if (grpcStatus !== status.OK) return [new UnaryError(grpcStatus, grpcMessage)];
    const body = r.body;
    if (body.length < 5 || body[0] !== 0) return [new UnaryError(status.INTERNAL, 'malformed or compressed response message')];
    const len = body.readUInt32BE(1);
    if (body.length < 5 + len) return [new UnaryError(status.INTERNAL, 'truncated response message')];
    try {
      return [null, m.responseDeserialize(body.subarray(5, 5 + len))];
    } catch (e) {
      return [new UnaryError(status.INTERNAL, `Response message parsing error: ${(e as Error).message}`)];
    }
  }

  close(): void {
    this.closed = true;
    this.conn?.destroy('channel closed');
    this.conn = undefined;
  }
}
