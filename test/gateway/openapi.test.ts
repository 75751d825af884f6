// The OpenAPI document (src/gateway/openapi.ts): OpenAPI 3.1 shape, every $ref resolving, the same
// routes and field names as the reflection the gateway serves from, and real answers of the server
// validating against the response schemas it documents.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { gatewayRoutes, protoSchema, type MessageInfo } from '../../src/gateway/index.js';
import { ERROR_SCHEMA, refOf, type OpenApiDocument, type OperationObject, type SchemaObject } from '../../src/gateway/openapi.js';
import { gatewayOpenApiDocument } from '../../src/http/docs.js';
import { startGateway, type GatewayServer } from './harness.js';

const doc: OpenApiDocument = gatewayOpenApiDocument();
const schema = protoSchema();
const JSON_TYPE = 'application/json';

function postOf(path: string): OperationObject {
  const item = doc.paths[path];
  assert.ok(item !== undefined && 'post' in item, `POST ${path} documented`);
  return item.post;
}

function jsonSchemaOf(content: Record<string, { schema: SchemaObject }> | undefined, what: string): SchemaObject {
  const s = content?.[JSON_TYPE]?.schema;
  assert.ok(s !== undefined, `${what}: application/json schema`);
  return s;
}

/** Every {"$ref": ...} string anywhere in v, with where it sits. */
function refsIn(v: unknown, at: string, out: Array<{ ref: string; at: string }> = []): Array<{ ref: string; at: string }> {
  if (Array.isArray(v)) v.forEach((x, i) => refsIn(x, `${at}/${i}`, out));
  else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push({ ref: x, at });
      else refsIn(x, `${at}/${k}`, out);
    }
  }
  return out;
}

/** Resolves a local JSON pointer (#/a/b) in the document. */
function resolvePointer(ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `local ref ${ref}`);
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof cur !== 'object' || cur === null || !(key in cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function fieldNames(info: MessageInfo): string[] {
  const fields = info.members.flatMap((m) => (m.kind === 'field' ? [m.field] : m.oneof.members));
  return [...new Set(fields.flatMap((f) => [f.protoName, f.jsonName]))].sort();
}

// ---- ajv over the document's components --------------------------------------------------------

const DOC_ID = 'urn:etcd-gateway:openapi';

/** The schema with its refs pointing into the components registered under DOC_ID. */
function forAjv(s: unknown): Record<string, unknown> {
  const text = JSON.stringify(s).replaceAll('"#/components/schemas/', `"${DOC_ID}#/$defs/`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Response-side components: no input-only aliases, and nothing undocumented allowed. */
function strictComponents(): Record<string, SchemaObject> {
  const out: Record<string, SchemaObject> = {};
  for (const [name, s] of Object.entries(doc.components.schemas)) {
    if (s.properties === undefined) {
      out[name] = s;
      continue;
    }
    const properties = Object.fromEntries(Object.entries(s.properties).filter(([, p]) => p.writeOnly !== true));
    out[name] = { ...s, properties, additionalProperties: false };
  }
  return out;
}

function makeAjv(components: Record<string, SchemaObject>): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addVocabulary(['x-oneof', 'x-proto-field']);
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  for (const f of ['int64', 'uint64', 'int32', 'uint32', 'double', 'float']) ajv.addFormat(f, { type: 'number', validate: () => true });
  ajv.addSchema({ $id: DOC_ID, $defs: forAjv(components) });
  return ajv;
}

describe('OpenAPI document shape', () => {
  test('is OpenAPI 3.1 with info, tags and the /v3beta alias explained', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    assert.match(doc.info.description, /\/v3beta\//);
    const tags = new Set(doc.tags.map((t) => t.name));
    for (const item of Object.values(doc.paths)) for (const op of Object.values(item) as OperationObject[]) for (const t of op.tags) assert.ok(tags.has(t), t);
  });

  test('every gateway path has a POST with a request body, a 200 schema and error schemas', () => {
    for (const path of Object.keys(doc.paths).filter((p) => p.startsWith('/v3/'))) {
      const op = postOf(path);
      assert.ok(op.requestBody !== undefined, `${path} requestBody`);
      jsonSchemaOf(op.requestBody.content, `${path} request`);
      jsonSchemaOf(op.responses['200']?.content, `${path} 200`);
      for (const range of ['4XX', '5XX']) assert.ok(refsIn(op.responses[range], '').some((r) => r.ref === refOf(ERROR_SCHEMA)), `${path} ${range}`);
    }
  });

  test('the ops endpoints are documented as GETs', () => {
    for (const path of ['/health', '/livez', '/readyz', '/metrics', '/version']) {
      const item = doc.paths[path];
      assert.ok(item !== undefined && 'get' in item, path);
      assert.ok(item.get.responses['200']?.content !== undefined, path);
    }
  });

  test('operationIds are unique', () => {
    const ids = Object.values(doc.paths).flatMap((item) => (Object.values(item) as OperationObject[]).map((op) => op.operationId));
    assert.equal(new Set(ids).size, ids.length);
  });

  test('every $ref resolves to a schema', () => {
    const refs = refsIn(doc, '#');
    assert.ok(refs.length > 100, `${refs.length} refs`);
    for (const { ref, at } of refs) {
      const target = resolvePointer(ref);
      assert.ok(typeof target === 'object' && target !== null, `${ref} (at ${at}) resolves`);
    }
  });

  test('every component compiles as a JSON Schema 2020-12 (ajv, strict mode)', () => {
    const ajv = makeAjv(doc.components.schemas);
    for (const name of Object.keys(doc.components.schemas)) ajv.compile({ $ref: `${DOC_ID}#/$defs/${name}` });
  });

  test('the checked-in snapshot, if any, is the current document', () => {
    const file = new URL('../../../openapi/etcd-gateway.json', import.meta.url);
    if (!existsSync(file)) return;
    const snapshot: unknown = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(snapshot, JSON.parse(JSON.stringify(doc)), 'openapi/etcd-gateway.json is stale: run node openapi/generate.mjs');
  });
});

describe('OpenAPI document against the reflection', () => {
  test('the documented /v3 paths are exactly the routes the gateway serves', () => {
    const documented = Object.keys(doc.paths).filter((p) => p.startsWith('/v3/')).sort();
    assert.deepEqual(documented, gatewayRoutes.map((r) => r.path).sort());
  });

  test('each route documents its rpc, request and response types and streaming', () => {
    for (const route of gatewayRoutes) {
      const m = schema.method(route.method);
      const op = postOf(route.path);
      assert.equal(op['x-grpc-method'], m.grpcPath, route.path);
      assert.deepEqual(jsonSchemaOf(op.requestBody?.content, route.path), { $ref: refOf(m.requestType) });
      const ok = refsIn(op.responses['200'], '').map((r) => r.ref);
      assert.ok(ok.includes(refOf(m.responseType)), `${route.path} 200 -> ${m.responseType}`);
      const streaming = m.requestStream || m.responseStream;
      assert.equal(op['x-streaming'] !== undefined, streaming, `${route.path} streaming`);
    }
  });

  test('every message component has the reflection fields under both names', () => {
    let n = 0;
    for (const [name, s] of Object.entries(doc.components.schemas)) {
      if (s.type !== 'object' || name.startsWith('gateway.') || name.startsWith('ops.')) continue;
      assert.deepEqual(Object.keys(s.properties ?? {}).sort(), fieldNames(schema.message(name)), name);
      n++;
    }
    assert.ok(n > 60, `${n} messages`);
  });

  test('sampled request messages: names, aliases and JSON types as the codec maps them', () => {
    const range = doc.components.schemas['etcdserverpb.RangeRequest'];
    assert.ok(range?.properties !== undefined);
    assert.deepEqual(range.properties.key?.format, 'byte');
    assert.equal(range.properties.rangeEnd?.writeOnly, true);
    assert.equal(range.properties.range_end?.writeOnly, undefined);
    assert.deepEqual(range.properties.limit?.anyOf?.map((a) => a.type), ['string', 'integer']);
    assert.deepEqual(range.properties.sort_order?.$ref, refOf('etcdserverpb.RangeRequest.SortOrder'));
    const order = doc.components.schemas['etcdserverpb.RangeRequest.SortOrder'];
    assert.deepEqual(order?.anyOf?.[0]?.enum, ['NONE', 'ASCEND', 'DESCEND']);
    assert.equal(order?.anyOf?.[1]?.type, 'integer');
    const watch = doc.components.schemas['etcdserverpb.WatchRequest'];
    assert.deepEqual(watch?.['x-oneof'], { request_union: ['create_request', 'cancel_request', 'progress_request'] });
    const grant = doc.components.schemas['etcdserverpb.LeaseGrantRequest'];
    assert.deepEqual(Object.keys(grant?.properties ?? {}), ['TTL', 'ID']);
    const member = doc.components.schemas['etcdserverpb.MemberAddRequest'];
    assert.deepEqual(Object.keys(member?.properties ?? {}).sort(), ['isLearner', 'peerURLs']);
  });
});

describe('real answers validate against the documented response schemas', () => {
  let s: GatewayServer;
  const loose = makeAjv(doc.components.schemas);
  const strict = makeAjv(strictComponents());
  before(async () => { s = await startGateway(); });
  after(async () => { await s.close(); });

  const validators = (path: string, status: '200' | '4XX'): ValidateFunction[] => {
    const sch = forAjv(jsonSchemaOf(postOf(path).responses[status]?.content, `${path} ${status}`));
    return [loose.compile(sch), strict.compile(sch)];
  };

  const check = (path: string, status: '200' | '4XX', body: unknown): void => {
    for (const v of validators(path, status)) assert.ok(v(body), `${path} ${status}: ${JSON.stringify(v.errors)} for ${JSON.stringify(body)}`);
  };

  const post = async (path: string, body: string): Promise<{ status: number; text: string }> => {
    const r = await fetch(s.url + path, { method: 'POST', body });
    return { status: r.status, text: await r.text() };
  };

  test('kv put and range', async () => {
    const put = await post('/v3/kv/put', '{"key":"YQ==","value":"MQ==","prev_kv":true}');
    assert.equal(put.status, 200);
    check('/v3/kv/put', '200', JSON.parse(put.text));
    const again = await post('/v3/kv/put', '{"key":"YQ==","value":"Mg==","prevKv":true}');
    check('/v3/kv/put', '200', JSON.parse(again.text));
    const range = await post('/v3/kv/range', '{"key":"YQ==","range_end":"AA==","sort_order":"DESCEND"}');
    assert.equal(range.status, 200);
    const body: unknown = JSON.parse(range.text);
    assert.match(range.text, /"kvs":\[/);
    check('/v3/kv/range', '200', body);
  });

  test('txn, lease grant and keepalive (a stream), status', async () => {
    const txn = await post('/v3/kv/txn', '{"compare":[{"key":"YQ==","target":"VERSION","result":"GREATER","version":"0"}],"success":[{"request_range":{"key":"YQ=="}}],"failure":[{"requestPut":{"key":"Yg=="}}]}');
    assert.equal(txn.status, 200);
    check('/v3/kv/txn', '200', JSON.parse(txn.text));
    const grant = await post('/v3/lease/grant', '{"TTL":60}');
    assert.equal(grant.status, 200);
    const granted: unknown = JSON.parse(grant.text);
    check('/v3/lease/grant', '200', granted);
    const id = (granted as { ID: string }).ID;
    const ka = await post('/v3/lease/keepalive', `{"ID":"${id}"}{"ID":"${id}"}`);
    assert.equal(ka.status, 200);
    const lines = ka.text.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 2);
    for (const line of lines) check('/v3/lease/keepalive', '200', JSON.parse(line));
    const status = await post('/v3/maintenance/status', '');
    check('/v3/maintenance/status', '200', JSON.parse(status.text));
  });

  test('the response-side schemas reject aliases and unknown names', () => {
    const [looseOk, strictOk] = validators('/v3/kv/put', '200');
    assert.ok(looseOk !== undefined && strictOk !== undefined);
    assert.equal(looseOk({ prevKv: {} }), true);
    assert.equal(strictOk({ prevKv: {} }), false);
    assert.equal(strictOk({ header: { revision: 1.5 } }), false);
    assert.equal(strictOk({ header: { revision: '2' }, prev_kv: { key: 'YQ==' } }), true);
  });

  test('an error answer matches the error schema', async () => {
    const r = await post('/v3/kv/range', '{}');
    assert.equal(r.status, 400);
    check('/v3/kv/range', '4XX', JSON.parse(r.text));
  });
});
