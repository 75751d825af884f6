// Runtime reflection of proto/*.proto (protobufjs): the one source of field names, numbers, types,
// JSON names and enum values for the JSON codec, the route schemas and the OpenAPI document.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export type ScalarKind = 'int64' | 'uint64' | 'int32' | 'uint32' | 'bool' | 'string' | 'bytes' | 'double' | 'float';

export interface EnumInfo {
  readonly fullName: string;
  /** The Go type name in jsonpb's errors, e.g. etcdserverpb.RangeRequest_SortOrder. */
  readonly goName: string;
  readonly byName: ReadonlyMap<string, number>;
  readonly byNumber: ReadonlyMap<number, string>;
}

export type FieldType =
  | { readonly kind: 'scalar'; readonly scalar: ScalarKind }
  | { readonly kind: 'enum'; readonly info: EnumInfo }
  | { readonly kind: 'message'; readonly fullName: string };

export interface FieldInfo {
  /** The .proto name: what etcd writes and what requests may use. */
  readonly protoName: string;
  /** protoc's lowerCamelCase json_name, also accepted in requests. */
  readonly jsonName: string;
  /** The property name in the ts-proto message objects of src/gen. */
  readonly tsName: string;
  readonly number: number;
  readonly repeated: boolean;
  readonly type: FieldType;
}

export interface OneofInfo {
  readonly protoName: string;
  readonly tsName: string;
  readonly members: readonly FieldInfo[];
}

/** A message's fields in Go struct order: a oneof sits where its first member is declared. */
export type Member = { readonly kind: 'field'; readonly field: FieldInfo } | { readonly kind: 'oneof'; readonly oneof: OneofInfo };

export interface MessageInfo {
  readonly fullName: string;
  readonly members: readonly Member[];
}

export interface MethodInfo {
  /** e.g. etcdserverpb.KV.Range */
  readonly fullName: string;
  /** gRPC path, e.g. /etcdserverpb.KV/Range */
  readonly grpcPath: string;
  readonly requestType: string;
  readonly responseType: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

const PROTO_FILES = [
  'etcdserverpb/rpc.proto', 'mvccpb/kv.proto', 'authpb/auth.proto',
  'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto',
];

const SCALARS: Record<string, ScalarKind> = {
  int64: 'int64', sint64: 'int64', sfixed64: 'int64', uint64: 'uint64', fixed64: 'uint64',
  int32: 'int32', sint32: 'int32', sfixed32: 'int32', uint32: 'uint32', fixed32: 'uint32',
  bool: 'bool', string: 'string', bytes: 'bytes', double: 'double', float: 'float',
};

function protoDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'proto', 'etcdserverpb', 'rpc.proto'))) return join(dir, 'proto');
    if (dirname(dir) === dir) throw new Error('proto/ not found above ' + fileURLToPath(import.meta.url));
  }
}

/** protoc's ToJsonName: drop each underscore and upper-case the letter after it. */
export function jsonNameOf(protoName: string): string {
  return protoName.replace(/_(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase());
}

/** ts-proto's key naming (snakeToCamel only for names with an underscore). */
function tsNameOf(protoName: string): string {
  if (!protoName.includes('_')) return protoName;
  const lower = /[a-z]/.test(protoName);
  return protoName.split('_').map((w, i) => {
    const word = lower ? w : w.toLowerCase();
    return i === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1);
  }).join('');
}

function stripDot(name: string): string {
  return name.startsWith('.') ? name.slice(1) : name;
}

export class ProtoSchema {
  private readonly root: protobuf.Root;
  private readonly messages = new Map<string, MessageInfo>();
  private readonly enums = new Map<string, EnumInfo>();

  constructor(dir = protoDir()) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith(dir) ? target : join(dir, target));
    root.loadSync(PROTO_FILES.map((f) => join(dir, f)), { keepCase: true });
    root.resolveAll();
    this.root = root;
  }

  message(fullName: string): MessageInfo {
    const known = this.messages.get(fullName);
    if (known !== undefined) return known;
    const type = this.root.lookupType(fullName);
    const members: Member[] = [];
    const oneofs = new Map<protobuf.OneOf, { protoName: string; tsName: string; members: FieldInfo[] }>();
    for (const f of type.fieldsArray) {
      const field = this.field(f);
      const of = f.partOf;
      if (of === null) {
        members.push({ kind: 'field', field });
        continue;
      }
      let o = oneofs.get(of);
      if (o === undefined) {
        o = { protoName: of.name, tsName: tsNameOf(of.name), members: [] };
        oneofs.set(of, o);
        members.push({ kind: 'oneof', oneof: o });
      }
      o.members.push(field);
    }
    const info: MessageInfo = { fullName, members };
    this.messages.set(fullName, info);
    return info;
  }

  method(fullName: string): MethodInfo {
    const m = this.root.lookup(fullName);
    if (!(m instanceof protobuf.Method) || m.parent === null) throw new Error(`no rpc ${fullName}`);
    const service = stripDot(m.parent.fullName);
    return {
      fullName,
      grpcPath: `/${service}/${m.name}`,
      requestType: stripDot(m.resolvedRequestType?.fullName ?? m.requestType),
      responseType: stripDot(m.resolvedResponseType?.fullName ?? m.responseType),
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
    };
  }

  private field(f: protobuf.Field): FieldInfo {
    return {
      protoName: f.name,
      jsonName: jsonNameOf(f.name),
      tsName: tsNameOf(f.name),
      number: f.id,
      repeated: f.repeated,
      type: this.fieldType(f),
    };
  }

  private fieldType(f: protobuf.Field): FieldType {
    const scalar = SCALARS[f.type];
    if (scalar !== undefined) return { kind: 'scalar', scalar };
    const t = f.resolvedType;
    if (t instanceof protobuf.Enum) return { kind: 'enum', info: this.enumInfo(t) };
    if (t instanceof protobuf.Type) return { kind: 'message', fullName: stripDot(t.fullName) };
    throw new Error(`unsupported field type ${f.type} of ${f.fullName}`);
  }

  private enumInfo(e: protobuf.Enum): EnumInfo {
    const fullName = stripDot(e.fullName);
    const known = this.enums.get(fullName);
    if (known !== undefined) return known;
    // Go names a nested type Parent_Child inside its package.
    let pkg = e.parent;
    const path = [e.name];
    while (pkg !== null && pkg instanceof protobuf.Type) {
      path.unshift(pkg.name);
      pkg = pkg.parent;
    }
    const goName = `${pkg === null ? '' : stripDot(pkg.fullName)}.${path.join('_')}`;
    const byName = new Map(Object.entries(e.values));
    const byNumber = new Map<number, string>();
    for (const [name, n] of byName) if (!byNumber.has(n)) byNumber.set(n, name);
    const info: EnumInfo = { fullName, goName, byName, byNumber };
    this.enums.set(fullName, info);
    return info;
  }
}

let shared: ProtoSchema | undefined;

/** The process-wide schema (parsing the protos once). */
export function protoSchema(): ProtoSchema {
  shared ??= new ProtoSchema();
  return shared;
}
