// Writing gateway answers the way etcd's grpc-gateway v1 does: unary success, gateway-side errors
// (Content-Length, no trailer; bodies go out as Buffers so Fastify adds no charset), errors from the gRPC server (chunked with a Grpc-Trailer-Content-Type
// trailer), plain-text routing errors, and {"result":...} lines for streams.
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { GatewayCodec } from '../../gateway/index.js';
import { errorBody, httpStatusOf, streamErrorBody, type GatewayStatus } from './errors.js';

const JSON_TYPE = 'application/json';

/** Headers set on the reply so far (CORS): a hijacked reply writes them itself. */
function setHeaders(reply: FastifyReply): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) out[k] = v;
  return out;
}

export function sendOk(reply: FastifyReply, body: string): void {
  void reply.code(200).header('content-type', JSON_TYPE).header('grpc-metadata-content-type', 'application/grpc').send(Buffer.from(body));
}

/** An error raised by the gateway itself (request decoding): no gRPC trailer. */
export function sendGatewayError(reply: FastifyReply, s: GatewayStatus): void {
  void reply.code(httpStatusOf(s.code)).header('content-type', JSON_TYPE).send(Buffer.from(errorBody(s)));
}

/** An error status returned by the gRPC server, with its trailer. */
export function sendGrpcError(reply: FastifyReply, s: GatewayStatus): void {
  void reply.code(httpStatusOf(s.code)).header('content-type', JSON_TYPE)
    .trailer('grpc-trailer-content-type', (_r, _p, done) => done(null, 'application/grpc'))
    .send(Buffer.from(errorBody(s)));
}

/** Go's http.Error: "<text>\n" as text/plain. */
export function sendText(reply: FastifyReply, status: number, text: string): void {
  void reply.code(status).header('content-type', 'text/plain; charset=utf-8').header('x-content-type-options', 'nosniff').send(`${text}\n`);
}

/**
 * A streaming answer on the raw response: headers go out with the first message (an idle
 * stream sends nothing); one {"result":...} line per message; a final error object.
 * The caller has hijacked the reply.
 */
export class ResultStream {
  private started = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly codec: GatewayCodec,
    private readonly typeName: string,
  ) {}

  get closed(): boolean {
    return this.reply.raw.destroyed || this.reply.raw.writableEnded;
  }

  /** Bytes written and not yet taken by the client's socket. */
  backlogBytes(): number {
    return this.reply.raw.writableLength;
  }

  /** Writes one message; false when the socket is congested (wait for 'drain'). */
  send(msg: unknown): boolean {
    if (this.closed) return true;
    this.start(200);
    return this.reply.raw.write(this.codec.resultLine(this.typeName, msg));
  }

  drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.reply.raw.off('drain', done);
        this.reply.raw.off('close', done);
        resolve();
      };
      this.reply.raw.on('drain', done);
      this.reply.raw.on('close', done);
    });
  }

  /** The stream failed: status line if nothing went out yet, then the error object. */
  fail(s: GatewayStatus): void {
    if (this.closed) return;
    this.start(httpStatusOf(s.code));
    this.reply.raw.end(streamErrorBody(s));
  }

  end(): void {
    if (this.closed) return;
    this.start(200);
    this.reply.raw.end();
  }

  /** The request was refused before the stream started (its first message did not decode). */
  reject(s: GatewayStatus): void {
    if (this.closed || this.started) return;
    this.started = true;
    const body = errorBody(s);
    this.reply.raw.writeHead(httpStatusOf(s.code), {
      ...setHeaders(this.reply), 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body),
    });
    this.reply.raw.end(body);
  }

  private start(status: number): void {
    if (this.started) return;
    this.started = true;
    this.reply.raw.writeHead(status, {
      ...setHeaders(this.reply), 'content-type': JSON_TYPE, 'grpc-metadata-content-type': 'application/grpc', 'transfer-encoding': 'chunked',
      // Not etcd's: tells a reverse proxy (nginx) not to buffer this stream even where its
      // configuration leaves proxy_buffering on, so each message reaches the client as written.
      'x-accel-buffering': 'no',
    });
  }
}
