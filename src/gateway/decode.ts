// Request JSON -> message, as grpc-gateway v1's jsonpb.Unmarshaler{AllowUnknownFields: true}
// decodes it: original or lowerCamelCase names (the camel one wins if both are present), unknown
// fields ignored, null = absent, quoted or bare numbers, enums by name or number, strict base64,
// and Go's error texts. The result has the shape of the ts-proto types in src/gen.
import { Base64Error, decodeStdBase64 } from './base64.js';
import { goQuote } from './go-string.js';
import { goKind, JsonSyntaxError, parseWhole, type JsonValue } from './json-scan.js';
import type { FieldInfo, FieldType, MessageInfo, ProtoSchema, ScalarKind } from './schema.js';

/** A request the gateway cannot decode; the message is etcd's (Go's) text. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export type Message = Record<string, unknown>;

const INT_RANGE: Record<'int64' | 'uint64' | 'int32' | 'uint32', readonly [bigint, bigint]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
};

function typeError(what: string, goType: string): DecodeError {
  return new DecodeError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

/** The default of a bytes field: one shared empty buffer (zero bytes cannot be changed). */
const NO_BYTES = Buffer.alloc(0);

/** A message type's defaults, made once: scalars to copy, and the list fields (new per message). */
interface Defaults {
  readonly base: Message;
  readonly lists: readonly string[];
}

export class MessageDecoder {
  private readonly defaults = new Map<MessageInfo, Defaults>();

  constructor(private readonly schema: ProtoSchema) {}

  /** A message with every field at its default (what ts-proto's fromPartial({}) builds). */
  empty(info: MessageInfo): Message {
    let d = this.defaults.get(info);
    if (d === undefined) {
      const base: Message = {};
      const lists: string[] = [];
      for (const mem of info.members) {
        if (mem.kind === 'oneof') base[mem.oneof.tsName] = undefined;
        else if (mem.field.repeated) lists.push(mem.field.tsName);
        else base[mem.field.tsName] = defaultOf(mem.field.type);
      }
      d = { base, lists };
      this.defaults.set(info, d);
    }
    const m: Message = { ...d.base };
    for (const name of d.lists) m[name] = [];
    return m;
  }

  /** Decodes one JSON value (a whole request body or a nested message) into a message. */
  decode(typeName: string, v: JsonValue): Message {
    const info = this.schema.message(typeName);
    const m = this.empty(info);
    if (v.kind === 'null') return m;
    if (v.kind !== 'object') throw typeError(goKind(v), 'map[string]json.RawMessage');
    const fields = v.fields;
    const consume = (f: FieldInfo): JsonValue | undefined => fields.get(f.jsonName) ?? fields.get(f.protoName);
    for (const mem of info.members) {
      if (mem.kind !== 'field') continue;
      const raw = consume(mem.field);
      if (raw === undefined || raw.kind === 'null') continue;
      m[mem.field.tsName] = this.fieldValue(mem.field, raw);
    }
    for (const mem of info.members) {
      if (mem.kind !== 'oneof') continue;
      for (const f of mem.oneof.members) {
        const raw = consume(f);
        if (raw === undefined) continue;
        // jsonpb sets the oneof wrapper before decoding, so null selects the member with its zero value.
        const value = raw.kind === 'null' ? (f.type.kind === 'message' ? this.decode(f.type.fullName, raw) : defaultOf(f.type)) : this.single(f.type, raw);
        m[mem.oneof.tsName] = { $case: f.tsName, value };
      }
    }
    return m;
  }

  private fieldValue(f: FieldInfo, v: JsonValue): unknown {
    if (!f.repeated) return this.single(f.type, v);
    if (v.kind !== 'array') throw typeError(goKind(v), '[]json.RawMessage');
    // A null element stays the element type's zero value (an empty message for message lists).
    return v.items.map((item) => (item.kind !== 'null' ? this.single(f.type, item)
      : f.type.kind === 'message' ? this.decode(f.type.fullName, item) : defaultOf(f.type)));
  }

  private single(t: FieldType, v: JsonValue): unknown {
    switch (t.kind) {
      case 'message':
        return this.decode(t.fullName, v);
      case 'enum': {
        if (v.kind === 'string') {
          const name = v.raw.toString('utf8');
          const n = t.info.byName.get(name);
          if (n === undefined) throw new DecodeError(`unknown value ${goQuote(name)} for enum ${t.info.goName}`);
          return n;
        }
        return Number(integer(v, 'int32', t.info.goName));
      }
      case 'scalar':
        return scalar(t.scalar, v);
    }
  }
}

function defaultOf(t: FieldType): unknown {
  switch (t.kind) {
    case 'message': return undefined;
    case 'enum': return 0;
    case 'scalar':
      switch (t.scalar) {
        case 'int64': case 'uint64': return 0n;
        case 'int32': case 'uint32': case 'double': case 'float': return 0;
        case 'bool': return false;
        case 'string': return '';
        case 'bytes': return NO_BYTES;
      }
  }
}

function scalar(kind: ScalarKind, v: JsonValue): unknown {
  switch (kind) {
    case 'int64': case 'uint64': return integer(v, kind, kind);
    case 'int32': case 'uint32': return Number(integer(v, kind, kind));
    case 'double': case 'float': {
      const n = numberText(v, kind === 'double' ? 'float64' : 'float32');
      return Number(n);
    }
    case 'bool':
      if (v.kind !== 'bool') throw typeError(goKind(v), 'bool');
      return v.value;
    case 'string':
      if (v.kind !== 'string') throw typeError(goKind(v), 'string');
      return v.value;
    case 'bytes':
      if (v.kind !== 'string') throw typeError(goKind(v), '[]uint8');
      try {
        // Without escapes the raw bytes are the text: decode them in place.
        return decodeStdBase64(v.raw.includes(0x5c) ? Buffer.from(v.value, 'utf8') : v.raw);
      } catch (e) {
        if (e instanceof Base64Error) throw new DecodeError(e.message);
        throw e;
      }
  }
}

/** jsonpb strips the quotes of a quoted number (without unescaping) and unmarshals the rest. */
function numberText(v: JsonValue, goType: string): string {
  let inner = v;
  if (v.kind === 'string') {
    try {
      inner = parseWhole(v.raw);
    } catch (e) {
      if (e instanceof JsonSyntaxError) throw new DecodeError(e.message);
      throw e;
    }
  }
  if (inner.kind !== 'number') throw typeError(goKind(inner), goType);
  return inner.raw;
}

function integer(v: JsonValue, kind: keyof typeof INT_RANGE, goType: string): bigint {
  const text = numberText(v, goType);
  const [lo, hi] = INT_RANGE[kind];
  const unsigned = kind === 'uint64' || kind === 'uint32';
  if (!(unsigned ? /^[0-9]+$/ : /^-?[0-9]+$/).test(text)) throw typeError(`number ${text}`, goType);
  const n = BigInt(text);
  if (n < lo || n > hi) throw typeError(`number ${text}`, goType);
  return n;
}
