// etcd 3.4's v2 cluster endpoints (spec 12.1-12.3): /v2/members, /v2/machines and /v2/stats/{self,
// leader,store}, answered from the V3Backend (memberList, status). Bodies and headers as etcd writes
// them: members answers carry X-Etcd-Cluster-Id and end in a newline (json.Encoder); stats answers
// carry neither; non-v2 errors are {"message":...} without a newline (spec 8.3).
//
// Membership changes (POST /v2/members, PUT/DELETE /v2/members/<id>) are validated exactly as etcd
// validates them (415 content type, 400 URL parsing, 404 unknown member, 409 peer URL taken), then
// made through the backend's MemberAdd/Update/Remove: 201 with the new member, 204, or etcd's
// answer to a change it cannot apply (e.g. not enough started members): 500
// {"message":"Internal Server Error"}.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EtcdError } from '../../backend/errors.js';
import type { V3Backend } from '../../backend/index.js';
import type * as pb from '../../gen/etcdserverpb/rpc.js';
import { goJsonString } from '../../gateway/index.js';

const MEMBERS = '/v2/members';
const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

function hex(id: bigint): string {
  return id.toString(16);
}

// ---- Go formatting ----------------------------------------------------------------------------

/** Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros trimmed), in UTC. */
export function goTime(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2006-01-02T15:04:05.000Z
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${frac === '' ? '' : `.${frac}`}Z`;
}

function fracDigits(n: bigint, unit: bigint, digits: number): string {
  const whole = n / unit;
  const f = (n % unit).toString().padStart(digits, '0').replace(/0+$/, '');
  return f === '' ? whole.toString() : `${whole}.${f}`;
}

/** Go's time.Duration.String() for a non-negative duration in nanoseconds. */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  if (ns < 1000n) return `${ns}ns`;
  if (ns < 1_000_000n) return `${fracDigits(ns, 1000n, 3)}µs`;
  if (ns < 1_000_000_000n) return `${fracDigits(ns, 1_000_000n, 6)}ms`;
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const s = fracDigits(ns % 60_000_000_000n, 1_000_000_000n, 9);
  if (h > 0n) return `${h}h${m}m${s}s`;
  if (m > 0n) return `${m}m${s}s`;
  return `${s}s`;
}

// ---- members ----------------------------------------------------------------------------------

function memberJson(m: pb.Member): string {
  const list = (xs: readonly string[]): string => `[${xs.map(goJsonString).join(',')}]`;
  return `{"id":"${hex(m.ID)}","name":${goJsonString(m.name)},"peerURLs":${list(m.peerURLs)},"clientURLs":${list(m.clientURLs)}}`;
}

async function membersOf(backend: V3Backend): Promise<{ clusterId: bigint; members: pb.Member[] }> {
  const r = await backend.memberList({ linearizable: false } as pb.MemberListRequest);
  // etcd's cluster.Members() is sorted by ID
  const members = [...r.members].sort((a, b) => (a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0));
  return { clusterId: r.header?.clusterId ?? 0n, members };
}

/** A non-v2 error: {"message":...} with no newline (httptypes.HTTPError). */
export async function sendMessage(reply: FastifyReply, status: number, message: string): Promise<void> {
  await reply.code(status).header('content-type', 'application/json').send(Buffer.from(`{"message":${goJsonString(message)}}`));
}

export async function methodNotAllowed(reply: FastifyReply, allow: string | undefined): Promise<void> {
  if (allow !== undefined) void reply.header('allow', allow);
  await reply.code(405).headers({ 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).send(Buffer.from('Method Not Allowed\n'));
}

/** Go's types.NewURLs: trimmed, parsed, scheme/host:port/path checked; the error text as etcd's. */
export function parsePeerUrls(urls: readonly string[]): { ok: true; urls: string[] } | { ok: false; message: string } {
  if (urls.length === 0) return { ok: false, message: 'no valid URLs given' };
  const out: string[] = [];
  for (const raw of urls) {
    const s = raw.trim();
    const sm = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(s);
    const scheme = sm ? sm[1]!.toLowerCase() : '';
    if (!['http', 'https', 'unix', 'unixs'].includes(scheme)) return { ok: false, message: `URL scheme must be http, https, unix, or unixs: ${s}` };
    const rest = sm![2]!.replace(/[?#].*$/s, '');
    let host = '';
    let path = rest;
    if (rest.startsWith('//')) {
      const slash = rest.indexOf('/', 2);
      const authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
      path = slash < 0 ? '' : rest.slice(slash);
      host = authority.slice(authority.lastIndexOf('@') + 1);
    }
    // net.SplitHostPort: a port separator is required ([v6]:port for IPv6)
    const hostPortOk = host.startsWith('[') ? /^\[[^\]]*\]:[^:]*$/.test(host) : /^[^:]*:[^:]*$/.test(host);
    if (!hostPortOk) return { ok: false, message: `URL address does not have the form "host:port": ${s}` };
    if (path !== '') return { ok: false, message: `URL must not contain a path: ${s}` };
    out.push(s);
  }
  return { ok: true, urls: out.sort() };
}

/** etcd's unmarshalRequest: Content-Type check (lowercased only when parameters follow), then JSON. */
function parseMemberRequest(req: FastifyRequest): { ok: true; urls: string[] } | { ok: false; status: number; message: string } {
  let ctype = req.headers['content-type'] ?? '';
  const semi = ctype.indexOf(';');
  if (semi !== -1) ctype = ctype.slice(0, semi).trim().toLowerCase();
  if (ctype !== 'application/json') return { ok: false, status: 415, message: `Bad Content-Type ${ctype}, accept application/json` };
  const text = typeof req.body === 'string' ? req.body : '';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    // Go's encoding/json words its syntax errors differently; the status is etcd's.
    return { ok: false, status: 400, message: e instanceof Error ? e.message : String(e) };
  }
  if (v !== null && (typeof v !== 'object' || Array.isArray(v))) return { ok: false, status: 400, message: 'json: cannot unmarshal request into Go value' };
  // Go matches struct fields case-insensitively; the last matching key wins.
  let list: unknown = null;
  for (const [k, x] of Object.entries((v ?? {}) as Record<string, unknown>)) if (k.toLowerCase() === 'peerurls') list = x;
  if (list !== null && (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))) {
    return { ok: false, status: 400, message: 'json: cannot unmarshal into Go struct field .peerURLs of type []string' };
  }
  const r = parsePeerUrls((list ?? []) as string[]);
  return r.ok ? r : { ok: false, status: 400, message: r.message };
}

/** types.IDFromString: strconv.ParseUint(s, 16, 64). */
function parseId(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F]+$/.test(s)) return undefined;
  const id = BigInt(`0x${s}`);
  return id < 1n << 64n ? id : undefined;
}

function subPath(req: FastifyRequest): string | undefined {
  const url = req.raw.url ?? '';
  const q = url.indexOf('?');
  let p = q < 0 ? url : url.slice(0, q);
  try {
    p = decodeURIComponent(p);
  } catch {
    return undefined;
  }
  // etcd's trimPrefix: the prefix, then one leading slash
  p = p.slice(MEMBERS.length);
  return p.startsWith('/') ? p.slice(1) : p;
}

/** Whether a request comes from a user with the root role (or auth is off): etcd's hasRootAccess. */
export type RootCheck = (req: FastifyRequest) => Promise<boolean>;

async function serveMembers(backend: V3Backend, isRoot: RootCheck, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const method = req.method;
  if (!['GET', 'POST', 'DELETE', 'PUT'].includes(method)) return methodNotAllowed(reply, 'GET,POST,DELETE,PUT');
  // etcd's hasWriteRootAccess: reading the members is open, changing them takes root.
  if (method !== 'GET' && !(await isRoot(req))) return sendMessage(reply, 401, 'Insufficient credentials');
  const sub = subPath(req);
  if (sub === undefined) {
    await reply.code(400).header('content-type', 'text/plain; charset=utf-8').send('400 Bad Request');
    return;
  }
  const { clusterId, members } = await membersOf(backend);
  void reply.header('x-etcd-cluster-id', hex(clusterId));
  const json = (status: number, body: string): FastifyReply => reply.code(status).header('content-type', 'application/json').send(Buffer.from(`${body}\n`));
  const peerTaken = (urls: readonly string[], except?: bigint): boolean =>
    members.some((m) => m.ID !== except && m.peerURLs.some((u) => urls.includes(u)));

  switch (method) {
    case 'GET': {
      if (sub === '') return void (await json(200, `{"members":[${members.map(memberJson).join(',')}]}`));
      if (sub === 'leader') {
        const st = await backend.status({} as pb.StatusRequest);
        const leader = st.leader === 0n ? undefined : members.find((m) => m.ID === st.leader);
        if (leader === undefined) return sendMessage(reply, 503, 'During election');
        return void (await json(200, memberJson(leader)));
      }
      return sendMessage(reply, 404, 'Not found');
    }
    case 'POST': {
      const r = parseMemberRequest(req);
      if (!r.ok) return sendMessage(reply, r.status, r.message);
      if (peerTaken(r.urls)) return sendMessage(reply, 409, 'membership: peerURL exists');
      try {
        const added = await backend.memberAdd({ peerURLs: r.urls, isLearner: false });
        return void (await json(201, memberJson(added.member!)));
      } catch (e) {
        return changeFailed(reply, e, undefined);
      }
    }
    default: {
      // PUT and DELETE: etcd's getID, then (PUT) the body, then the change itself
      if (sub === '') return methodNotAllowed(reply, undefined);
      const id = parseId(sub);
      if (id === undefined) return sendMessage(reply, 404, `No such member: ${sub}`);
      let urls: string[] = [];
      if (method === 'PUT') {
        const r = parseMemberRequest(req);
        if (!r.ok) return sendMessage(reply, r.status, r.message);
        urls = r.urls;
      }
      if (!members.some((m) => m.ID === id)) return sendMessage(reply, 404, `No such member: ${hex(id)}`);
      if (method === 'PUT' && peerTaken(urls, id)) return sendMessage(reply, 409, 'membership: peerURL exists');
      try {
        if (method === 'PUT') await backend.memberUpdate({ ID: id, peerURLs: urls });
        else await backend.memberRemove({ ID: id });
      } catch (e) {
        return changeFailed(reply, e, id);
      }
      return void (await reply.code(204).send());
    }
  }
}

/** etcd's v2 members handler's error answers for a change the cluster refused. */
async function changeFailed(reply: FastifyReply, e: unknown, id: bigint | undefined): Promise<void> {
  const code = e instanceof EtcdError ? e.code : undefined;
  if (code === 'memberNotFound') return sendMessage(reply, 404, `No such member: ${hex(id ?? 0n)}`);
  if (code === 'peerURLExist') return sendMessage(reply, 409, 'membership: peerURL exists');
  if (code === 'memberExist') return sendMessage(reply, 409, 'membership: ID exists');
  return sendMessage(reply, 500, 'Internal Server Error');
}

// ---- stats ------------------------------------------------------------------------------------

interface Clock {
  /** When these routes were set up: this server's start, standing in for the member's. */
  readonly startMs: number;
  readonly startNs: bigint;
}

async function selfStats(backend: V3Backend, clock: Clock): Promise<string> {
  const st = await backend.status({} as pb.StatusRequest);
  const self = st.header?.memberId ?? 0n;
  const { members } = await membersOf(backend);
  const name = members.find((m) => m.ID === self)?.name ?? '';
  const state = st.leader === 0n ? 'StateCandidate' : st.leader === self ? 'StateLeader' : 'StateFollower';
  // The embedded single member leads from its start: the leader's start is the server's.
  const uptime = goDuration(process.hrtime.bigint() - clock.startNs);
  const start = goTime(clock.startMs);
  // Append counts are raft traffic between members: 0 for a single member, as in etcd.
  return `{"name":${goJsonString(name)},"id":"${hex(self)}","state":"${state}","startTime":"${start}",` +
    `"leaderInfo":{"leader":"${st.leader === 0n ? '' : hex(st.leader)}","uptime":"${uptime}","startTime":"${start}"},` +
    '"recvAppendRequestCnt":0,"sendAppendRequestCnt":0}';
}

/** storeStats: `/v2/stats/store`'s JSON (the v2 store's counters). */
export function v2ClusterRoutes(app: FastifyInstance, backend: V3Backend, storeStats: () => string, isRoot: RootCheck): void {
  const clock: Clock = { startMs: Date.now(), startNs: process.hrtime.bigint() };
  void app.register(async (scope) => {
    // The v2 keys scope discards non-form bodies; members requests carry JSON (any type is read as
    // text so that the Content-Type check is etcd's own, not a parser's).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scope.setErrorHandler(async (_err, _req, reply) => sendMessage(reply, 500, 'Internal Server Error'));

    const members = (req: FastifyRequest, reply: FastifyReply): Promise<void> => serveMembers(backend, isRoot, req, reply);
    for (const url of [MEMBERS, `${MEMBERS}/`, `${MEMBERS}/*`]) {
      scope.route({ method: [...ALL_METHODS], url, handler: members, exposeHeadRoute: false });
    }

    scope.route({
      method: [...ALL_METHODS], url: '/v2/machines', exposeHeadRoute: false,
      handler: async (req, reply) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(reply, 'GET,HEAD');
        const { members: ms } = await membersOf(backend);
        const urls = ms.flatMap((m) => m.clientURLs).sort();
        await reply.code(200).header('content-type', 'text/plain; charset=utf-8').send(Buffer.from(urls.join(', ')));
      },
    });

    const stats = (url: string, body: () => Promise<{ status: number; body: string }>): void => {
      scope.route({
        method: [...ALL_METHODS], url, exposeHeadRoute: false,
        handler: async (req, reply) => {
          if (req.method !== 'GET') return methodNotAllowed(reply, 'GET');
          const r = await body();
          await reply.code(r.status).header('content-type', 'application/json').send(Buffer.from(r.body));
        },
      });
    };
    stats('/v2/stats/self', async () => ({ status: 200, body: await selfStats(backend, clock) }));
    stats('/v2/stats/leader', async () => {
      const st = await backend.status({} as pb.StatusRequest);
      const self = st.header?.memberId ?? 0n;
      if (st.leader === 0n || st.leader !== self) return { status: 403, body: '{"message":"not current leader"}' };
      // A single member: no followers, hence no latency/count entries.
      return { status: 200, body: `{"leader":"${hex(self)}","followers":{}}` };
    });
    stats('/v2/stats/store', async () => ({ status: 200, body: storeStats() }));
  });
}
