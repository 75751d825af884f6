// The etcd v2 keys API (/v2/keys) as a Fastify plugin: parses and validates (form.ts, params.ts),
// calls the v2 store (src/v2/), renders events (render.ts) and maps V2Error once (errors.ts), with
// etcd's headers. Form bodies are parsed here (application/x-www-form-urlencoded, PUT/POST only);
// any other body is ignored, as etcd does.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { INTERNAL_CALL, withCallContext, type V3Backend } from '../../backend/index.js';
import type { V2Metrics } from '../../metrics/index.js';
import type { OpenStreams } from '../../util/open-streams.js';
import { RangeMirror } from '../../upstream/mirror.js';
import {
  DEFAULT_V2_PREFIX, isV2Error, KeySchema, normalizeKey, V2AuthGate, V2Error, V2Store, type V2Access, type V2Header, type V2Watch,
} from '../../v2/index.js';
import { v2AuthRoutes } from './auth.js';
import { v2ClusterRoutes } from './cluster.js';
import { errorBody, httpStatusOf, internalError } from './errors.js';
import { parseForm } from './form.js';
import { cleanTarget, redirect, splitUrl } from '../go-mux.js';
import { endsAtClientFin } from '../half-close.js';
import { parseKeysRequest, type KeysMethod, type KeysOperation } from './params.js';
import { eventJson } from './render.js';

export interface V2KeysOptions {
  readonly backend: V3Backend;
  /**
   * Where v2 nodes live in the v3 keyspace (see src/v2/keys.ts). Default "/v2". Not named `prefix`:
   * Fastify's register() reserves that option for URL prefixes.
   */
  readonly v2Prefix?: string;
  /** Requests by action and status, open long polls, the shared watch's subscribers. */
  readonly metrics?: V2Metrics;
  /** Open long polls register here so a graceful shutdown ends them (empty body, as a cut poll). */
  readonly streams?: OpenStreams;
  /** Long polls and streams one client address may hold open (--max-v2-long-polls-per-client; 0: no limit). */
  readonly maxLongPollsPerClient?: number;
  /**
   * With auth on, a request without credentials runs as the server's own login instead of the
   * guest role: gateway mode with --user, whose token-less clients are all served as that user.
   */
  readonly guestIsServer?: boolean;
  /**
   * Gateway mode: serializable reads come from an in-memory copy of the v2 keyspace of at most
   * this many bytes (src/upstream/mirror.ts); 0 or absent: every read goes to the backend.
   */
  readonly readMirrorBytes?: number;
}

/** etcd's form size limit (Go's 10 MiB for POST forms). */
export const FORM_BYTES_MAX = 10 * 1024 * 1024;

const KEYS_PATH = '/v2/keys';
const METHODS: readonly KeysMethod[] = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];

interface Ctx {
  readonly store: V2Store;
  readonly auth: V2AuthGate;
  readonly metrics: V2Metrics | undefined;
  readonly streams: OpenStreams | undefined;
  readonly maxLongPollsPerClient: number;
  /** Open long polls by client address (req.ip: the forwarded client behind --trusted-proxies). */
  readonly longPolls: Map<string, number>;
  clusterId?: bigint;
}

function hex(id: bigint): string {
  return id.toString(16);
}

async function clusterIdOf(ctx: Ctx, h?: V2Header): Promise<bigint> {
  if (h && h.clusterId !== 0n) ctx.clusterId = h.clusterId;
  ctx.clusterId ??= (await ctx.store.header()).clusterId;
  return ctx.clusterId;
}

async function sendError(ctx: Ctx, reply: FastifyReply, e: V2Error): Promise<void> {
  const id = await clusterIdOf(ctx).catch(() => 0n);
  const body = errorBody(e);
  await reply.code(httpStatusOf(e.code)).headers({
    'content-type': 'application/json',
    'x-etcd-cluster-id': hex(id),
    'x-etcd-index': String(e.index),
  }).send(Buffer.from(body));
}

function successHeaders(h: V2Header, clusterId: bigint): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-etcd-cluster-id': hex(clusterId),
    'x-etcd-index': String(h.index),
    // Synthesised: the embedded core's raft index is not exposed per answer; the revision stands in.
    'x-raft-index': String(h.index),
    'x-raft-term': String(h.raftTerm),
  };
}

/**
 * A long poll (one event, then the response ends) or a stream (one JSON line per event): headers
 * are flushed at registration; the client going away aborts the backend watch at once.
 */
async function serveWatch(ctx: Ctx, client: string, reply: FastifyReply, op: Extract<KeysOperation, { kind: 'watch' }>): Promise<void> {
  // Our bound (etcd has none): one address cannot hold every watcher slot and socket. 429 with a
  // v2 error body, so v2 clients show the cause; they retry like after any failed poll.
  const open = ctx.longPolls.get(client) ?? 0;
  if (ctx.maxLongPollsPerClient > 0 && open >= ctx.maxLongPollsPerClient) {
    const cause = `too many long polls from ${client} (--max-v2-long-polls-per-client=${ctx.maxLongPollsPerClient})`;
    await reply.code(429).header('content-type', 'application/json').send(Buffer.from(errorBody(new V2Error(300, cause, 0))));
    return;
  }
  ctx.longPolls.set(client, open + 1);
  try {
    await serveWatchOf(ctx, reply, op);
  } finally {
    const n = (ctx.longPolls.get(client) ?? 1) - 1;
    if (n === 0) ctx.longPolls.delete(client);
    else ctx.longPolls.set(client, n);
  }
}

async function serveWatchOf(ctx: Ctx, reply: FastifyReply, op: Extract<KeysOperation, { kind: 'watch' }>): Promise<void> {
  const ac = new AbortController();
  const res = reply.raw;
  const onClose = (): void => ac.abort();
  res.on('close', onClose);
  endsAtClientFin(res, onClose); // the watch ends, and with it the response (empty), as etcd's
  const release = ctx.streams?.add(() => ac.abort());
  const pollEnded = ctx.metrics?.longPollOpened();
  let w: V2Watch;
  try {
    w = await ctx.store.watch({ path: op.path, recursive: op.recursive, waitIndex: op.waitIndex, stream: op.stream }, ac.signal);
  } catch (e) {
    res.off('close', onClose);
    release?.();
    pollEnded?.();
    throw e;
  }
  const clusterId = await clusterIdOf(ctx, w.header);
  reply.hijack();
  res.writeHead(200, successHeaders(w.header, clusterId));
  res.flushHeaders();
  try {
    for await (const ev of w.events) {
      res.write(eventJson(ev));
      if (!op.stream) break;
    }
  } catch {
    // the watch failed after the headers went out: end the response (empty body), as etcd does
  } finally {
    ac.abort();
    res.off('close', onClose);
    release?.();
    pollEnded?.();
    if (!res.writableEnded) res.end();
  }
}

/** What a parsed request needs permission for, as etcd 3.4 asks it (its raw path, recursive flag). */
function accessOf(method: KeysMethod, rawKey: string, op: KeysOperation): V2Access {
  const recursive = op.kind === 'write' ? op.request.kind === 'delete' && op.request.recursive : op.recursive;
  return { key: rawKey, write: method !== 'GET' && method !== 'HEAD', recursive };
}

/** The action a request is counted under in the v2 request metrics. */
function actionOf(op: KeysOperation | undefined): string {
  if (op === undefined) return 'invalid';
  return op.kind === 'write' ? op.request.kind : op.kind;
}

async function handle(ctx: Ctx, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  let op: KeysOperation | undefined;
  try {
    await handleOp(ctx, req, reply, (parsed) => (op = parsed));
  } finally {
    ctx.metrics?.request(actionOf(op), reply.raw.statusCode);
  }
}

async function handleOp(ctx: Ctx, req: FastifyRequest, reply: FastifyReply, parsed: (op: KeysOperation) => void): Promise<void> {
  const method = req.method as KeysMethod;
  const { path: rawPath, query } = splitUrl(req.raw.url ?? '/');
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    await reply.code(400).header('content-type', 'text/plain; charset=utf-8').send('400 Bad Request');
    return;
  }
  const target = cleanTarget(decoded, query);
  if (target !== undefined) return redirect(reply, method, target);
  const keyPath = normalizeKey(decoded.slice(KEYS_PATH.length));

  const form = new Map<string, string>();
  if ((method === 'PUT' || method === 'POST') && typeof req.body === 'string') {
    const fromBody = parseForm(req.body, form);
    if (!fromBody.ok) return sendError(ctx, reply, new V2Error(210, fromBody.cause, 0));
  }
  const fromQuery = parseForm(query, form);
  if (!fromQuery.ok) return sendError(ctx, reply, new V2Error(210, fromQuery.cause, 0));

  try {
    const op = parseKeysRequest(method, keyPath, form);
    parsed(op);
    // After parsing, as etcd: a malformed request is answered 400 whoever sends it.
    const authorization = req.headers.authorization;
    if (!(await ctx.auth.allowsKeys(authorization, accessOf(method, decoded.slice(KEYS_PATH.length), op)))) {
      return await sendError(ctx, reply, new V2Error(110, 'Insufficient credentials', 0));
    }
    switch (op.kind) {
      case 'watch':
        return await serveWatch(ctx, req.ip, reply, op);
      case 'get': {
        const r = await ctx.store.get({ path: op.path, recursive: op.recursive, sorted: op.sorted, quorum: op.quorum });
        await reply.code(r.status).headers(successHeaders(r.header, await clusterIdOf(ctx, r.header))).send(Buffer.from(eventJson(r.event)));
        return;
      }
      case 'write': {
        const r = await ctx.store.write(op.request);
        await reply.code(r.status).headers(successHeaders(r.header, await clusterIdOf(ctx, r.header))).send(Buffer.from(eventJson(r.event, op.noValueOnSuccess)));
        return;
      }
    }
  } catch (e) {
    return sendError(ctx, reply, isV2Error(e) ? e : internalError(e));
  }
}

async function v2KeysPlugin(app: FastifyInstance, opts: V2KeysOptions): Promise<void> {
  const metrics = opts.metrics;
  const observer = metrics === undefined ? undefined : { opened: () => metrics.sharedWatchOpened() };
  const prefix = opts.v2Prefix ?? DEFAULT_V2_PREFIX;
  // The store runs as the server (its physical keys are not the caller's to name): the caller's
  // v2 permissions are checked on its logical keys first (src/v2/auth.ts).
  const internal = withCallContext(opts.backend, INTERNAL_CALL);
  const mirror = (opts.readMirrorBytes ?? 0) > 0
    ? new RangeMirror(internal, {
      ...new KeySchema(prefix).allRange(),
      maxBytes: opts.readMirrorBytes!,
      onState: (state, detail) => (state === 'loaded' ? app.log.info(`v2 read mirror loaded: ${detail}`) : app.log.warn(`v2 read mirror dropped, GETs read the upstream: ${detail}`)),
    })
    : undefined;
  if (mirror !== undefined) metrics?.readMirror(() => mirror.stats());
  const store = new V2Store(mirror?.view() ?? internal, prefix, observer);
  const ctx: Ctx = {
    store,
    auth: new V2AuthGate(opts.backend, prefix, opts.guestIsServer ?? false),
    metrics,
    streams: opts.streams,
    maxLongPollsPerClient: opts.maxLongPollsPerClient ?? 0,
    longPolls: new Map(),
  };
  await ctx.store.start();
  mirror?.start();
  app.addHook('onClose', async () => {
    mirror?.close();
    await ctx.store.close();
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BYTES_MAX }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  app.setErrorHandler(async (err, _req, reply) => {
    const tooLarge = typeof err === 'object' && err !== null && 'statusCode' in err && err.statusCode === 413;
    await sendError(ctx, reply, tooLarge ? new V2Error(210, 'http: POST too large', 0) : internalError(err));
  });
  const handler = (req: FastifyRequest, reply: FastifyReply): Promise<void> => handle(ctx, req, reply);
  const methodNotAllowed = async (_req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await reply.code(405).headers({
      allow: 'HEAD,GET,PUT,POST,DELETE',
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
    }).send('Method Not Allowed\n');
  };
  for (const url of [KEYS_PATH, `${KEYS_PATH}/`, `${KEYS_PATH}/*`]) {
    app.route({ method: [...METHODS], url, handler, exposeHeadRoute: false });
    app.route({ method: ['PATCH'], url, handler: methodNotAllowed });
  }
  v2ClusterRoutes(app, opts.backend, () => ctx.store.storeStatsJson(), (req) => ctx.auth.allowsRoot(req.headers.authorization));
  v2AuthRoutes(app, opts.backend, ctx.auth, () => clusterIdOf(ctx));
}

/** `await app.register(v2Keys, { backend, v2Prefix })`: routes under /v2/keys, in their own scope. */
export const v2Keys = v2KeysPlugin;
