// A JSON reader that behaves like Go's encoding/json as grpc-gateway v1 uses it: a Decoder that
// reads the first value of a body (trailing data ignored), json.Unmarshal for a whole text, and
// Go's exact syntax error texts. Numbers and strings keep their raw text: int64 values must not
// pass through a JS number, and jsonpb strips the quotes of a quoted number without unescaping.

export type JsonValue =
  | { readonly kind: 'object'; readonly fields: ReadonlyMap<string, JsonValue> }
  | { readonly kind: 'array'; readonly items: readonly JsonValue[] }
  | JsonString
  | { readonly kind: 'number'; readonly raw: string }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'null' };

/**
 * A string value: its raw bytes (between the quotes, escapes included) and, computed only when
 * asked for, its unescaped text — a large base64 value is decoded from the raw bytes and never
 * becomes a JS string.
 */
export class JsonString {
  readonly kind = 'string' as const;
  private text: string | undefined;
  constructor(readonly raw: Buffer) {}
  get value(): string {
    return (this.text ??= unescape(this.raw));
  }
}

/** A malformed body: the message is Go's text for the same input. */
export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
}

/** The buffer ended inside a value (more bytes may still arrive). */
class Incomplete extends Error {}

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Go's quoteChar: how a byte is shown in a syntax error. */
export function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  return `'${goQuoteRune(c)}'`;
}

function goQuoteRune(c: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 0x5c: '\\\\' };
  const n = named[c];
  if (n !== undefined) return n;
  if (c < 0x20 || c === 0x7f) return `\\x${c.toString(16).padStart(2, '0')}`;
  if ((c >= 0x80 && c < 0xa0) || c === 0xad) return `\\u${c.toString(16).padStart(4, '0')}`;
  return String.fromCharCode(c);
}

/**
 * Go's scanner refuses nesting deeper than 10000 with this text. This reader recurses per level,
 * and 10000 levels would overflow the JS stack (a RangeError, not an answer), so it stops at 1000:
 * deeper than any etcd request, and the answer is Go's.
 */
export const MAX_DEPTH = 1000;

class Reader {
  pos = 0;
  private depth = 0;
  constructor(readonly buf: Buffer) {}

  peek(): number {
    const c = this.buf[this.pos];
    if (c === undefined) throw new Incomplete();
    return c;
  }

  skipSpace(): void {
    while (this.pos < this.buf.length && SPACE.has(this.buf[this.pos]!)) this.pos++;
  }

  fail(c: number, context: string): never {
    throw new JsonSyntaxError(`invalid character ${quoteChar(c)} ${context}`);
  }

  value(): JsonValue {
    this.skipSpace();
    const c = this.peek();
    switch (c) {
      case 0x7b: return this.object();
      case 0x5b: return this.array();
      case 0x22: {
        return new JsonString(this.stringRaw());
      }
      case 0x74: this.literal('true'); return { kind: 'bool', value: true };
      case 0x66: this.literal('false'); return { kind: 'bool', value: false };
      case 0x6e: this.literal('null'); return { kind: 'null' };
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return { kind: 'number', raw: this.number() };
        return this.fail(c, 'looking for beginning of value');
    }
  }

  private literal(word: string): void {
    this.pos++;
    for (let i = 1; i < word.length; i++) {
      const c = this.peek();
      if (c !== word.charCodeAt(i)) this.fail(c, `in literal ${word} (expecting ${quoteChar(word.charCodeAt(i))})`);
      this.pos++;
    }
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new JsonSyntaxError('exceeded max depth');
  }

  private object(): JsonValue {
    this.enter();
    const v = this.objectBody();
    this.depth--;
    return v;
  }

  private array(): JsonValue {
    this.enter();
    const v = this.arrayBody();
    this.depth--;
    return v;
  }

  private objectBody(): JsonValue {
    this.pos++;
    const fields = new Map<string, JsonValue>();
    this.skipSpace();
    if (this.peek() === 0x7d) {
      this.pos++;
      return { kind: 'object', fields };
    }
    for (;;) {
      this.skipSpace();
      const k = this.peek();
      if (k !== 0x22) this.fail(k, 'looking for beginning of object key string');
      const key = unescape(this.stringRaw());
      this.skipSpace();
      const colon = this.peek();
      if (colon !== 0x3a) this.fail(colon, 'after object key');
      this.pos++;
      fields.set(key, this.value());
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c === 0x7d) return { kind: 'object', fields };
      if (c !== 0x2c) this.fail(c, 'after object key:value pair');
    }
  }

  private arrayBody(): JsonValue {
    this.pos++;
    const items: JsonValue[] = [];
    this.skipSpace();
    if (this.peek() === 0x5d) {
      this.pos++;
      return { kind: 'array', items };
    }
    for (;;) {
      items.push(this.value());
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c === 0x5d) return { kind: 'array', items };
      if (c !== 0x2c) this.fail(c, 'after array element');
    }
  }

  /** The bytes between the quotes, escapes checked but kept. */
  private stringRaw(): Buffer {
    const start = ++this.pos;
    // Most strings (base64 above all) have no escape: find the closing quote at native speed and
    // check the bytes before it for control characters; anything else takes the loop below.
    const buf = this.buf;
    const close = buf.indexOf(0x22, start);
    if (close >= 0) {
      let i = start;
      while (i < close) {
        const c = buf[i]!;
        if (c < 0x20 || c === 0x5c) break;
        i++;
      }
      if (i === close) {
        this.pos = close + 1;
        return buf.subarray(start, close);
      }
    }
    for (;;) {
      const c = this.peek();
      if (c === 0x22) {
        const raw = this.buf.subarray(start, this.pos);
        this.pos++;
        return raw;
      }
      if (c < 0x20) this.fail(c, 'in string literal');
      this.pos++;
      if (c !== 0x5c) continue;
      const e = this.peek();
      this.pos++;
      if (e === 0x75) {
        for (let i = 0; i < 4; i++) {
          const h = this.peek();
          if (!isHex(h)) this.fail(h, 'in \\u hexadecimal character escape');
          this.pos++;
        }
      } else if (!'"\\/bfnrt'.includes(String.fromCharCode(e))) {
        this.fail(e, 'in string escape code');
      }
    }
  }

  private number(): string {
    const start = this.pos;
    const digits = (): void => {
      while (this.pos < this.buf.length && isDigit(this.buf[this.pos]!)) this.pos++;
    };
    if (this.peek() === 0x2d) {
      this.pos++;
      const c = this.peek();
      if (!isDigit(c)) this.fail(c, 'in numeric literal');
    }
    if (this.peek() === 0x30) this.pos++;
    else digits();
    // A number ends at the first byte that cannot continue it; at the end of the buffer it is
    // complete only at end of input (the caller decides).
    if (this.pos >= this.buf.length) throw new Incomplete();
    if (this.buf[this.pos] === 0x2e) {
      this.pos++;
      const c = this.peek();
      if (!isDigit(c)) this.fail(c, 'after decimal point in numeric literal');
      digits();
      if (this.pos >= this.buf.length) throw new Incomplete();
    }
    const e = this.buf[this.pos];
    if (e === 0x65 || e === 0x45) {
      this.pos++;
      let c = this.peek();
      if (c === 0x2b || c === 0x2d) {
        this.pos++;
        c = this.peek();
      }
      if (!isDigit(c)) this.fail(c, 'in exponent of numeric literal');
      digits();
      if (this.pos >= this.buf.length) throw new Incomplete();
    }
    return this.buf.toString('latin1', start, this.pos);
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Go's unquote of already-validated string bytes (invalid UTF-8 and lone surrogates -> U+FFFD). */
function unescape(raw: Buffer): string {
  if (!raw.includes(0x5c)) return raw.toString('utf8');
  let out = '';
  let seg = 0;
  let i = 0;
  while (i < raw.length) {
    if (raw[i] !== 0x5c) {
      i++;
      continue;
    }
    out += raw.toString('utf8', seg, i);
    const e = String.fromCharCode(raw[i + 1]!);
    if (e !== 'u') {
      out += ESCAPES[e] ?? '';
      i += 2;
    } else {
      const hi = parseInt(raw.toString('latin1', i + 2, i + 6), 16);
      i += 6;
      if (hi >= 0xd800 && hi < 0xdc00 && raw[i] === 0x5c && raw[i + 1] === 0x75) {
        const lo = parseInt(raw.toString('latin1', i + 2, i + 6), 16);
        if (lo >= 0xdc00 && lo < 0xe000) {
          out += String.fromCharCode(hi, lo);
          i += 6;
          seg = i;
          continue;
        }
      }
      out += hi >= 0xd800 && hi < 0xe000 ? '\ufffd' : String.fromCharCode(hi);
    }
    seg = i;
  }
  return out + raw.toString('utf8', seg);
}

export type FirstValue =
  | { readonly kind: 'value'; readonly value: JsonValue; readonly end: number }
  | { readonly kind: 'empty' }
  | { readonly kind: 'more' };

/**
 * json.Decoder.Decode on buf: the first value and where it ends. 'empty' = only whitespace up
 * to the end of input (Go's io.EOF); 'more' = the value is cut short and input may continue.
 * Throws JsonSyntaxError (Go's texts, including "unexpected EOF" when input ended mid-value).
 */
export function readFirstValue(buf: Buffer, atEnd: boolean): FirstValue {
  const r = new Reader(buf);
  r.skipSpace();
  if (r.pos >= buf.length) return atEnd ? { kind: 'empty' } : { kind: 'more' };
  try {
    const value = r.value();
    return { kind: 'value', value, end: r.pos };
  } catch (e) {
    if (!(e instanceof Incomplete)) throw e;
    if (!atEnd) return { kind: 'more' };
    return completeAtEnd(r, buf) ?? fail('unexpected EOF');
  }
}

/** json.Unmarshal of a whole text: one value, nothing but whitespace after it. */
export function parseWhole(buf: Buffer): JsonValue {
  const r = new Reader(buf);
  let value: JsonValue;
  try {
    value = r.value();
  } catch (e) {
    if (!(e instanceof Incomplete)) throw e;
    const v = completeAtEnd(r, buf);
    if (v === undefined) return fail('unexpected end of JSON input');
    value = v.value;
  }
  r.skipSpace();
  if (r.pos < buf.length) r.fail(buf[r.pos]!, 'after top-level value');
  return value;
}

/** A bare number that ran to the end of the input is complete there. */
function completeAtEnd(r: Reader, buf: Buffer): { kind: 'value'; value: JsonValue; end: number } | undefined {
  const text = buf.toString('latin1', 0, buf.length).trim();
  if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text)) return undefined;
  r.pos = buf.length;
  return { kind: 'value', value: { kind: 'number', raw: text }, end: buf.length };
}

function fail(msg: string): never {
  throw new JsonSyntaxError(msg);
}

/** The JSON kind as Go's UnmarshalTypeError names it. */
export function goKind(v: JsonValue): string {
  return v.kind === 'bool' ? 'bool' : v.kind;
}
