// The v3 gateway's OpenAPI 3.1 document, built from the same reflection the codec uses (schema.ts
// for messages, enums and rpcs; routes.ts for URLs): one component per message and enum reachable
// from a route, one POST path per route, and the operator endpoints /health and /version.
// Pure: no HTTP here; the HTTP edge passes its gRPC-code-to-HTTP-status table in.
import { gatewayRoutes, type GatewayRoute } from './routes.js';
import { protoSchema, type EnumInfo, type FieldInfo, type FieldType, type MessageInfo, type MethodInfo, type ProtoSchema, type ScalarKind } from './schema.js';

/** The subset of JSON Schema 2020-12 (as OpenAPI 3.1 uses it) this document emits. */
export interface SchemaObject {
  $ref?: string;
  title?: string;
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  pattern?: string;
  contentEncoding?: string;
  enum?: Array<string | number>;
  minimum?: number;
  maximum?: number;
  items?: SchemaObject;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: SchemaObject[];
  writeOnly?: boolean;
  /** oneof name -> its members' proto names (set at most one). */
  'x-oneof'?: Record<string, string[]>;
  /** The .proto field this property carries (on every message property). */
  'x-proto-field'?: { name: string; number: number; jsonName: string };
}

export interface MediaType {
  schema: SchemaObject;
}

export interface ResponseObject {
  description: string;
  content?: Record<string, MediaType>;
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  requestBody?: { description: string; required: boolean; content: Record<string, MediaType> };
  responses: Record<string, ResponseObject>;
  /** The gRPC method behind a gateway route, e.g. /etcdserverpb.KV/Range. */
  'x-grpc-method'?: string;
  /** Present on the four streaming routes. */
  'x-streaming'?: { request: boolean; response: boolean };
}

export type PathItem = { post: OperationObject } | { get: OperationObject };

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  tags: Array<{ name: string; description: string }>;
  paths: Record<string, PathItem>;
  components: {
    schemas: Record<string, SchemaObject>;
    securitySchemes: Record<string, { type: 'apiKey'; in: 'header'; name: string; description: string }>;
  };
  security: Array<Record<string, string[]>>;
}

export interface OpenApiOptions {
  /** info.version: the etcd version the gateway answers as. */
  readonly version: string;
  /** The HTTP status a gRPC status code is answered with (src/http/v3gw/errors.ts). */
  readonly httpStatusOf: (grpcCode: number) => number;
  readonly schema?: ProtoSchema;
  readonly routes?: readonly GatewayRoute[];
}

const JSON_TYPE = 'application/json';
export const ERROR_SCHEMA = 'gateway.Error';
export const STREAM_ERROR_SCHEMA = 'gateway.StreamError';
const HEALTH_SCHEMA = 'ops.Health';
const VERSION_SCHEMA = 'ops.Version';

const GRPC_CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

/** The component a message or enum is described by. */
export function refOf(fullName: string): string {
  return `#/components/schemas/${fullName}`;
}

// ---- scalars, enums, fields -------------------------------------------------------------------

const INT_PATTERN = '^-?[0-9]+$';
const UINT_PATTERN = '^[0-9]+$';

function quotedInteger(unsigned: boolean, format: string, range?: readonly [number, number]): SchemaObject[] {
  const int: SchemaObject = { type: 'integer', format };
  if (range !== undefined) [int.minimum, int.maximum] = range;
  return [int, { type: 'string', pattern: unsigned ? UINT_PATTERN : INT_PATTERN }];
}

function scalarSchema(kind: ScalarKind): SchemaObject {
  switch (kind) {
    case 'int64': case 'uint64':
      return {
        description: `${kind}: written as a decimal string; a JSON number or a decimal string is accepted on input.`,
        anyOf: quotedInteger(kind === 'uint64', kind).reverse(),
      };
    case 'int32': case 'uint32':
      return {
        description: `${kind}: written as a JSON number; a quoted number is accepted on input.`,
        anyOf: quotedInteger(kind === 'uint32', kind, kind === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1]),
      };
    case 'double': case 'float':
      return { description: `${kind}: a JSON number (a quoted number is accepted on input).`, anyOf: [{ type: 'number', format: kind }, { type: 'string' }] };
    case 'bool': return { type: 'boolean' };
    case 'string': return { type: 'string' };
    case 'bytes':
      return { type: 'string', format: 'byte', contentEncoding: 'base64', pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'bytes: standard base64 with padding.' };
  }
}

function enumSchema(info: EnumInfo): SchemaObject {
  const values = [...info.byName].map(([name, n]) => `${name}=${n}`).join(', ');
  return {
    title: info.fullName,
    description: `enum ${info.goName}: written by name (a number when it has none); a name or a number is accepted on input. Values: ${values}.`,
    anyOf: [{ type: 'string', enum: [...info.byName.keys()] }, { type: 'integer', format: 'int32' }],
  };
}

function typeSchema(t: FieldType): SchemaObject {
  switch (t.kind) {
    case 'scalar': return scalarSchema(t.scalar);
    case 'enum': return { $ref: refOf(t.info.fullName) };
    case 'message': return { $ref: refOf(t.fullName) };
  }
}

function typeName(t: FieldType): string {
  switch (t.kind) {
    case 'scalar': return t.scalar;
    case 'enum': return t.info.fullName;
    case 'message': return t.fullName;
  }
}

function fieldSchema(f: FieldInfo, note: string): SchemaObject {
  const single = typeSchema(f.type);
  const base: SchemaObject = f.repeated ? { type: 'array', items: single } : { ...single };
  const what = `${f.repeated ? 'repeated ' : ''}${typeName(f.type)} ${f.protoName} = ${f.number}`;
  const parts = [`${what}.`, note, base.description].filter((s) => s !== undefined && s !== '');
  return { ...base, description: parts.join(' '), 'x-proto-field': { name: f.protoName, number: f.number, jsonName: f.jsonName } };
}

function aliasSchema(f: FieldInfo, of: SchemaObject): SchemaObject {
  return {
    ...of,
    description: `lowerCamelCase alias of \`${f.protoName}\`: accepted on input (it wins over \`${f.protoName}\` when both are sent); responses use \`${f.protoName}\`.`,
    writeOnly: true,
  };
}

// ---- messages ---------------------------------------------------------------------------------

function fieldsOf(info: MessageInfo): Array<{ field: FieldInfo; oneof?: string }> {
  return info.members.flatMap((m) => (m.kind === 'field'
    ? [{ field: m.field }]
    : m.oneof.members.map((field) => ({ field, oneof: m.oneof.protoName }))));
}

function oneofNote(info: MessageInfo, oneof: string | undefined): string {
  if (oneof === undefined) return '';
  const names = fieldsOf(info).filter((f) => f.oneof === oneof).map((f) => f.field.protoName);
  return `Member of oneof \`${oneof}\`: set one of ${names.join(', ')}.`;
}

function messageSchema(info: MessageInfo): SchemaObject {
  const properties: Record<string, SchemaObject> = {};
  const oneofs: Record<string, string[]> = {};
  for (const { field, oneof } of fieldsOf(info)) {
    const s = fieldSchema(field, oneofNote(info, oneof));
    properties[field.protoName] = s;
    if (field.jsonName !== field.protoName) properties[field.jsonName] = aliasSchema(field, s);
    if (oneof !== undefined) (oneofs[oneof] ??= []).push(field.protoName);
  }
  const schema: SchemaObject = {
    type: 'object',
    title: info.fullName,
    description: `message ${info.fullName}.`,
    properties,
  };
  if (Object.keys(oneofs).length > 0) schema['x-oneof'] = oneofs;
  return schema;
}

/** Components for every message and enum reachable from the given message types. */
function messageComponents(schema: ProtoSchema, roots: Iterable<string>): Record<string, SchemaObject> {
  const out: Record<string, SchemaObject> = {};
  const pending = [...roots];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (out[name] !== undefined) continue;
    const info = schema.message(name);
    out[name] = messageSchema(info);
    for (const { field } of fieldsOf(info)) {
      if (field.type.kind === 'message') pending.push(field.type.fullName);
      if (field.type.kind === 'enum') out[field.type.info.fullName] ??= enumSchema(field.type.info);
    }
  }
  return sortedRecord(out);
}

function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---- gateway-level schemas ----------------------------------------------------------------------

function gatewaySchemas(): Record<string, SchemaObject> {
  const str: SchemaObject = { type: 'string' };
  const int: SchemaObject = { type: 'integer' };
  return {
    [ERROR_SCHEMA]: {
      type: 'object',
      title: ERROR_SCHEMA,
      description: 'A failed unary call (or a streaming call refused before it started): `error` and `message` carry the same text, `code` the gRPC status code.',
      properties: { error: str, message: str, code: { ...int, description: 'gRPC status code.' }, details: { type: 'array', description: 'grpc-gateway status details (etcd never sends any).' } },
      required: ['error', 'message', 'code'],
    },
    [STREAM_ERROR_SCHEMA]: {
      type: 'object',
      title: STREAM_ERROR_SCHEMA,
      description: 'The last object of a failed stream (no trailing newline).',
      properties: {
        error: {
          type: 'object',
          properties: { grpc_code: int, http_code: int, message: str, http_status: str },
          required: ['http_code', 'message', 'http_status'],
        },
      },
      required: ['error'],
    },
    [HEALTH_SCHEMA]: { type: 'object', title: HEALTH_SCHEMA, properties: { health: { type: 'string', enum: ['true', 'false'] }, reason: { type: 'string', description: 'Why it is unhealthy (etcd 3.5): "ALARM NOSPACE", "RAFT NO LEADER", "RANGE ERROR:...".' } }, required: ['health'] },
    [VERSION_SCHEMA]: { type: 'object', title: VERSION_SCHEMA, properties: { etcdserver: str, etcdcluster: str }, required: ['etcdserver', 'etcdcluster'] },
  };
}

// ---- paths ------------------------------------------------------------------------------------

function json(schema: SchemaObject): Record<string, MediaType> {
  return { [JSON_TYPE]: { schema } };
}

function resultLine(responseType: string): SchemaObject {
  return { type: 'object', properties: { result: { $ref: refOf(responseType) } }, required: ['result'] };
}

function successResponse(m: MethodInfo): ResponseObject {
  if (!m.responseStream) {
    return { description: `${m.responseType} (unary: one JSON object, no trailing newline).`, content: json({ $ref: refOf(m.responseType) }) };
  }
  return {
    description: `A stream, sent as \`application/json\` with chunked encoding: newline-delimited objects, one \`{"result": ${m.responseType}}\` per line as messages arrive; a failed stream ends with a ${STREAM_ERROR_SCHEMA} object. Each line matches this schema.`,
    content: json({ anyOf: [resultLine(m.responseType), { $ref: refOf(STREAM_ERROR_SCHEMA) }] }),
  };
}

function errorResponses(m: MethodInfo): Record<string, ResponseObject> {
  const schema: SchemaObject = m.responseStream || m.requestStream
    ? { anyOf: [{ $ref: refOf(ERROR_SCHEMA) }, { $ref: refOf(STREAM_ERROR_SCHEMA) }] }
    : { $ref: refOf(ERROR_SCHEMA) };
  const what = (range: string): string => `An error; the HTTP status follows the gRPC code (table in the API description); ${range}.`;
  return {
    '4XX': { description: what('a request that cannot be decoded is 400 with code 3'), content: json(schema) },
    '5XX': { description: what('a bad first message of a client stream is 500 with code 2'), content: json(schema) },
  };
}

function requestDescription(m: MethodInfo): string {
  const base = `${m.requestType}. Any Content-Type is read as JSON; an empty body is \`{}\`; data after the first JSON value is ignored.`;
  if (!m.requestStream) return base;
  return `A client stream: zero or more ${m.requestType} objects back to back (whitespace optional), each forwarded as it is decoded; the end of the body half-closes the stream.`;
}

function routeNotes(route: GatewayRoute, firstPath: string | undefined, m: MethodInfo): string {
  const notes: string[] = [`Calls gRPC \`${m.grpcPath}\`.`];
  if (firstPath !== undefined) notes.push(`Alias of \`${firstPath}\`.`);
  if (m.fullName === 'etcdserverpb.Maintenance.Hash') notes.push('HashKV is annotated with the same URL and is shadowed by Hash (as in etcd 3.4).');
  if (m.fullName === 'etcdserverpb.Watch.Watch') notes.push('The response stays open after the request body ends, until the client disconnects.');
  if (m.fullName === 'etcdserverpb.Lease.LeaseKeepAlive') notes.push('One result per request object; the response ends when the body ends.');
  notes.push(`Also served under \`/v3beta/${route.path.slice('/v3/'.length)}\`.`);
  return notes.join(' ');
}

function operationId(path: string): string {
  return path.slice(1).replace(/[^A-Za-z0-9]+/g, '_');
}

function routeOperation(route: GatewayRoute, m: MethodInfo, firstPath: string | undefined): OperationObject {
  const [, service = '', rpc = ''] = m.grpcPath.split('/');
  const op: OperationObject = {
    operationId: operationId(route.path),
    summary: `${service.split('.').pop() ?? service}.${rpc}`,
    description: routeNotes(route, firstPath, m),
    tags: [service],
    requestBody: { description: requestDescription(m), required: false, content: json({ $ref: refOf(m.requestType) }) },
    responses: { '200': successResponse(m), ...errorResponses(m) },
    'x-grpc-method': m.grpcPath,
  };
  if (m.requestStream || m.responseStream) op['x-streaming'] = { request: m.requestStream, response: m.responseStream };
  return op;
}

function opsPaths(): Record<string, PathItem> {
  const text = (s: SchemaObject): Record<string, MediaType> => ({ 'text/plain': { schema: s } });
  const health: SchemaObject = { $ref: refOf(HEALTH_SCHEMA) };
  return {
    '/health': {
      get: {
        operationId: 'health', summary: 'Health', tags: ['ops'],
        description: 'etcd 3.5\'s /health: a JSON object sent as text/plain. `?exclude=NOSPACE` (repeatable) ignores that alarm; `?serializable=true` skips the leader check.',
        responses: { '200': { description: 'Healthy.', content: text(health) }, '503': { description: 'Unhealthy.', content: text(health) } },
      },
    },
    ...checkPath('/livez', 'Liveness (etcd 3.5): the serializable_read check.'),
    ...checkPath('/readyz', 'Readiness (etcd 3.5): data_corruption, serializable_read, linearizable_read, non_learner.'),
    '/metrics': {
      get: {
        operationId: 'metrics', summary: 'Metrics', tags: ['ops'], description: 'Prometheus text exposition (etcd\'s metric names).',
        responses: { '200': { description: 'Metrics.', content: text({ type: 'string' }) } },
      },
    },
    '/version': {
      get: {
        operationId: 'version', summary: 'Version', tags: ['ops'], description: 'Server and cluster versions.',
        responses: { '200': { description: 'Versions.', content: json({ $ref: refOf(VERSION_SCHEMA) }) } },
      },
    },
  };
}

function checkPath(path: string, description: string): Record<string, PathItem> {
  const text: Record<string, MediaType> = { 'text/plain': { schema: { type: 'string' } } };
  return {
    [path]: {
      get: {
        operationId: path.slice(1), summary: path, tags: ['ops'],
        description: `${description} \`?verbose\` lists each check ("[+]name ok"); \`?exclude=name\` (repeatable) skips one; \`${path}/<check>\` runs one.`,
        responses: { '200': { description: '"ok".', content: text }, '503': { description: 'The failed checks.', content: text } },
      },
    },
  };
}

function statusTable(httpStatusOf: (code: number) => number): string {
  return GRPC_CODE_NAMES.slice(1).map((name, i) => `${i + 1} ${name} -> ${httpStatusOf(i + 1)}`).join(', ');
}

const INFO_DESCRIPTION: readonly string[] = [
  'etcd 3.4\'s v3 HTTP/JSON gateway (grpc-gateway v1 style): every rpc is `POST` with a JSON body, the whole body being the request message.',
  'Every `/v3/...` path is also served as `/v3beta/...` (etcd 3.4 rewrites `/v3beta/` to `/v3/`); `/v3alpha/` is not served.',
  'JSON mapping: bytes are standard base64 strings with padding; int64/uint64 are decimal strings in responses and a number or a decimal string in requests;',
  'enums are names in responses and a name or a number in requests; requests accept proto names and lowerCamelCase names (the latter are listed as write-only aliases);',
  'responses use proto names.',
  'Streaming routes (watch, lease keepalive, snapshot, election observe) answer newline-delimited `{"result": ...}` objects.',
  'Requests: unknown fields are ignored and null means absent. Responses omit zero values, empty lists and absent messages.',
  'Errors are `{"error","message","code"}` with an HTTP status by gRPC code:',
  'With auth enabled, send the token from `/v3/auth/authenticate` as the raw `Authorization` header (no `Bearer`).',
  'This document is generated from the same .proto reflection and URL table the gateway serves; it is at `GET /openapi.json`, browsable at `GET /docs`.',
];

function infoDescription(statusTable: string): string {
  const i = INFO_DESCRIPTION.findIndex((line) => line.endsWith('by gRPC code:'));
  return [...INFO_DESCRIPTION.slice(0, i + 1), `${statusTable}.`, ...INFO_DESCRIPTION.slice(i + 1)].join(' ');
}

export function buildOpenApiDocument(opts: OpenApiOptions): OpenApiDocument {
  const schema = opts.schema ?? protoSchema();
  const routes = opts.routes ?? gatewayRoutes;
  const paths: Record<string, PathItem> = {};
  const firstPathOf = new Map<string, string>();
  const types = new Set<string>();
  for (const route of routes) {
    const m = schema.method(route.method);
    paths[route.path] = { post: routeOperation(route, m, firstPathOf.get(m.fullName)) };
    if (!firstPathOf.has(m.fullName)) firstPathOf.set(m.fullName, route.path);
    types.add(m.requestType).add(m.responseType);
  }
  Object.assign(paths, opsPaths());
  const services = [...new Set(routes.map((r) => schema.method(r.method).grpcPath.split('/')[1] ?? ''))];
  return {
    openapi: '3.1.0',
    info: { title: 'etcd-gateway: etcd v3 HTTP/JSON gateway', version: opts.version, description: infoDescription(statusTable(opts.httpStatusOf)) },
    tags: [...services.map((name) => ({ name, description: `gRPC service ${name}.` })), { name: 'ops', description: 'Operator endpoints.' }],
    paths,
    components: {
      schemas: { ...messageComponents(schema, types), ...gatewaySchemas() },
      securitySchemes: {
        token: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The raw token from /v3/auth/authenticate (no Bearer prefix); Grpc-Metadata-Token also works.' },
      },
    },
    security: [{}, { token: [] }],
  };
}
