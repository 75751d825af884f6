// Message -> response JSON exactly as etcd's gateway writes it (jsonpb.Marshaler{OrigName: true}):
// original proto names in Go struct order, zero values, empty lists and absent messages omitted,
// a present message always written (an empty one as {}), a set oneof member always written,
// int64/uint64 as decimal strings, int32/uint32 as numbers, bytes as padded base64, enums by name.
import { goJsonString } from './go-string.js';
import type { FieldInfo, FieldType, ProtoSchema, ScalarKind } from './schema.js';

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null;
}

function isZero(t: FieldType, v: unknown): boolean {
  if (t.kind === 'message') return v === undefined;
  if (v instanceof Uint8Array) return v.length === 0;
  return v === 0 || v === 0n || v === false || v === '' || v === undefined;
}

export class MessageEncoder {
  constructor(private readonly schema: ProtoSchema) {}

  /** The JSON text of msg, a ts-proto object of protobuf type typeName. */
  encode(typeName: string, msg: unknown): string {
    if (!isObj(msg)) throw new TypeError(`${typeName}: not a message`);
    const parts: string[] = [];
    for (const mem of this.schema.message(typeName).members) {
      if (mem.kind === 'oneof') {
        const set = msg[mem.oneof.tsName];
        if (!isObj(set)) continue;
        const f = mem.oneof.members.find((m) => m.tsName === set.$case);
        if (f === undefined) throw new TypeError(`${typeName}: unknown oneof case ${String(set.$case)}`);
        parts.push(`${goJsonString(f.protoName)}:${this.single(f.type, set.value)}`);
        continue;
      }
      const f = mem.field;
      const v = msg[f.tsName];
      const text = this.field(f, v);
      if (text !== undefined) parts.push(`${goJsonString(f.protoName)}:${text}`);
    }
    return `{${parts.join(',')}}`;
  }

  private field(f: FieldInfo, v: unknown): string | undefined {
    if (f.repeated) {
      if (!Array.isArray(v) || v.length === 0) return undefined;
      return `[${v.map((item: unknown) => this.single(f.type, item)).join(',')}]`;
    }
    return isZero(f.type, v) ? undefined : this.single(f.type, v);
  }

  private single(t: FieldType, v: unknown): string {
    switch (t.kind) {
      case 'message':
        return v === undefined ? '{}' : this.encode(t.fullName, v);
      case 'enum': {
        const n = Number(v);
        const name = t.info.byNumber.get(n);
        return name === undefined ? String(n) : goJsonString(name);
      }
      case 'scalar':
        return scalarText(t.scalar, v);
    }
  }
}

function scalarText(kind: ScalarKind, v: unknown): string {
  switch (kind) {
    case 'int64': case 'uint64':
      if (typeof v !== 'bigint' && typeof v !== 'number') throw new TypeError(`${kind}: ${typeof v}`);
      return `"${BigInt(v).toString()}"`;
    case 'int32': case 'uint32': case 'double': case 'float': return String(Number(v));
    case 'bool': return v === true ? 'true' : 'false';
    case 'string': return goJsonString(String(v));
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw new TypeError(`bytes: ${typeof v}`);
      return `"${Buffer.from(v.buffer, v.byteOffset, v.length).toString('base64')}"`;
  }
}
