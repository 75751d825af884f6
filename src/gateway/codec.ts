// Whole request bodies and request streams -> messages, and messages -> response text: the
// gateway codec an HTTP edge needs, over one parsed schema.
import { DecodeError, MessageDecoder, type Message } from './decode.js';
import { MessageEncoder } from './encode.js';
import { JsonSyntaxError, readFirstValue, type JsonValue } from './json-scan.js';
import { protoSchema, type ProtoSchema } from './schema.js';

export class GatewayCodec {
  readonly decoder: MessageDecoder;
  readonly encoder: MessageEncoder;

  constructor(readonly schema: ProtoSchema = protoSchema()) {
    this.decoder = new MessageDecoder(schema);
    this.encoder = new MessageEncoder(schema);
  }

  /** A unary body: its first JSON value (trailing data ignored); an empty body is {}. */
  decodeBody(typeName: string, body: Buffer): Message {
    let first;
    try {
      first = readFirstValue(body, true);
    } catch (e) {
      throw asDecodeError(e);
    }
    return this.decoder.decode(typeName, first.kind === 'value' ? first.value : { kind: 'null' });
  }

  encode(typeName: string, msg: unknown): string {
    return this.encoder.encode(typeName, msg);
  }

  /** One stream message as a line: {"result":...} and a newline. */
  resultLine(typeName: string, msg: unknown): string {
    return `{"result":${this.encoder.encode(typeName, msg)}}\n`;
  }
}

function asDecodeError(e: unknown): unknown {
  return e instanceof JsonSyntaxError ? new DecodeError(e.message) : e;
}

/**
 * A request body carrying back-to-back JSON values (a client stream), decoded as bytes arrive,
 * as Go's json.Decoder reads it. Bytes of a value still incomplete are held up to maxPendingBytes.
 */
export class RequestStreamDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly codec: GatewayCodec,
    private readonly typeName: string,
    private readonly maxPendingBytes: number,
  ) {}

  /** Why decoding stopped (Go's text); set once, after which nothing more is decoded. */
  failure: DecodeError | undefined;

  /** Messages completed by chunk (those before a failure, which is then in `failure`). */
  push(chunk: Buffer): Message[] {
    if (this.failure !== undefined) return [];
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out = this.drain(false);
    if (this.failure === undefined && this.pending.length > this.maxPendingBytes) {
      this.failure = new DecodeError(`request stream message larger than ${this.maxPendingBytes} bytes`);
    }
    return out;
  }

  /** The end of the body: the last messages (a value cut short fails with "unexpected EOF"). */
  end(): Message[] {
    if (this.failure !== undefined) return [];
    return this.drain(true);
  }

  private drain(atEnd: boolean): Message[] {
    const out: Message[] = [];
    try {
      for (;;) {
        const r = readFirstValue(this.pending, atEnd);
        if (r.kind !== 'value') {
          if (r.kind === 'empty') this.pending = Buffer.alloc(0);
          return out;
        }
        this.pending = this.pending.subarray(r.end);
        out.push(this.decodeValue(r.value));
      }
    } catch (e) {
      const err = asDecodeError(e);
      if (!(err instanceof DecodeError)) throw err;
      this.failure = err;
      this.pending = Buffer.alloc(0);
      return out;
    }
  }

  private decodeValue(v: JsonValue): Message {
    return this.codec.decoder.decode(this.typeName, v);
  }
}
