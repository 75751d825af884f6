// Real nginx (Debian's) in front of our server, running the shipped deploy/nginx/etcd-gateway.conf
// with only its ports rewritten: v2 set/get, a v2 long poll answered right after a write, a v2
// stream=true watch and a /v3/watch gateway stream whose messages each arrive before the next
// write is made (a buffering proxy would hold them back), advertised URLs in /v2/machines and
// /v2/members, and etcdctl over gRPC through nginx's http2 listener.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { etcdctl, freePort, hasEtcd, makeTempDir, PROJECT_ROOT, removeTempDir, startOurServer } from '../helpers/procs.js';

const NGINX_BIN = '/usr/sbin/nginx';
const SHIPPED_CONF = join(PROJECT_ROOT, 'deploy', 'nginx', 'etcd-gateway.conf');
/** How long one streamed message may take to come through before the proxy counts as buffering. */
const EVENT_TIMEOUT_MS = 5_000;

/** Replaces `from` in `text` exactly `times` times (fails loudly if the shipped file changed shape). */
function rewrite(text: string, from: string, to: string, times: number): string {
  const n = text.split(from).length - 1;
  assert.equal(n, times, `${SHIPPED_CONF}: "${from}" appears ${n} times, expected ${times}`);
  return text.split(from).join(to);
}

interface Nginx {
  readonly pid: number;
  stop(): Promise<void>;
}

/** The shipped configuration with its listen ports and upstream port rewritten for this test. */
function shippedSite(httpPort: number, grpcPort: number, upstreamPort: number): string {
  let site = readFileSync(SHIPPED_CONF, 'utf8');
  site = rewrite(site, 'listen 80;', `listen 127.0.0.1:${httpPort};`, 1);
  site = rewrite(site, 'listen 2378 http2;', `listen 127.0.0.1:${grpcPort} http2;`, 1);
  return rewrite(site, 'server 127.0.0.1:2379;', `server 127.0.0.1:${upstreamPort};`, 2);
}

/** Starts nginx in the foreground with `site` (http-level blocks) in `dir`; ready once it proxies /health. */
async function startNginx(dir: string, site: string, httpPort: number): Promise<Nginx> {
  writeFileSync(join(dir, 'etcd-gateway.conf'), site);
  // Everything nginx writes stays in the temp dir (no root-owned /var paths); run in the foreground
  // so this process owns it. A root master would switch its worker to "nobody", which cannot
  // write into a 0700 temp dir: keep the worker as the current user.
  const main = [
    'daemon off;',
    'worker_processes 1;',
    process.getuid?.() === 0 ? 'user root;' : '',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
    `  include ${dir}/etcd-gateway.conf;`,
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), main);
  const child = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let dead = false;
  void exited.then(() => (dead = true));
  const stop = async (): Promise<void> => {
    if (!dead) {
      child.kill('SIGQUIT'); // nginx's graceful shutdown
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (dead) {
      const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      throw new Error(`nginx exited during startup: ${stderr}\n${log}`);
    }
    try {
      const res = await request(`http://127.0.0.1:${httpPort}/health`);
      await res.body.text();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not proxy /health within 10 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pid: child.pid!, stop };
}

/** Reads a streamed response body as it arrives; `next(re)` waits for the next match after the last one. */
class StreamReader {
  private text = '';
  private seen = 0;
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(private readonly body: AsyncIterable<Buffer> & { destroy(): void }, readonly headers: Record<string, unknown> = {}) {
    void (async () => {
      try {
        for await (const chunk of body) {
          this.text += chunk.toString('utf8');
          this.wake?.();
        }
      } catch {
        // destroyed by close()
      }
      this.ended = true;
      this.wake?.();
    })();
  }

  async next(re: RegExp, what: string): Promise<string> {
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    for (;;) {
      const m = re.exec(this.text.slice(this.seen));
      if (m !== null) {
        this.seen += m.index + m[0].length;
        return m[0];
      }
      if (this.ended) assert.fail(`${what}: the stream ended first; got ${JSON.stringify(this.text)}`);
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`${what}: not delivered within ${EVENT_TIMEOUT_MS} ms (buffered by the proxy?); got so far ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  rest(): string {
    return this.text.slice(this.seen);
  }

  close(): void {
    this.body.destroy();
  }
}

/** Opens a streamed response; its headers too must come through promptly. */
async function openStream(url: string, opts: Parameters<typeof request>[1], what: string): Promise<StreamReader> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, { ...opts, headersTimeout: EVENT_TIMEOUT_MS });
  } catch (e) {
    assert.fail(`${what}: no response headers within ${EVENT_TIMEOUT_MS} ms (buffered by the proxy?): ${String(e)}`);
  }
  assert.equal(res.statusCode, 200, what);
  return new StreamReader(res.body, res.headers);
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('nginx in front of the server: v2 and /v3/watch streams pass through unbuffered', { timeout: 60_000 }, async (t) => {
  if (!existsSync(NGINX_BIN)) return t.skip(`${NGINX_BIN} is not installed (apt-get install nginx; .ci/run installs it)`);
  const dir = await makeTempDir('nginx-');
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const viaNginx = `http://127.0.0.1:${httpPort}`;
  // Clients reach the cluster through nginx, so that is the URL the server advertises.
  const server = await startOurServer({ extraArgs: ['--advertise-client-urls', viaNginx] });
  const upstreamPort = Number(new URL(server.clientUrl).port);
  const nginx = await startNginx(dir, shippedSite(httpPort, grpcPort, upstreamPort), httpPort);
  const agent = new Agent({ connections: 16 });
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const call = async (base: string, method: 'GET' | 'PUT' | 'POST', path: string, body?: string, headers = form): Promise<{ status: number; text: string; headers: Record<string, unknown> }> => {
    const res = await request(base + path, { dispatcher: agent, method, ...(body !== undefined ? { body, headers } : {}) });
    return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
  };
  const streams: StreamReader[] = [];
  try {
    t.diagnostic(`nginx pid ${nginx.pid} on ${viaNginx} (gRPC on :${grpcPort}) -> ${server.clientUrl}`);

    // v2 set/get, with a percent-encoded unicode key name passed through undecoded
    const set = await call(viaNginx, 'PUT', '/v2/keys/dir/%D0%BA%D0%BB%D1%8E%D1%87%20x', 'value=h%C3%A9llo');
    assert.equal(set.status, 201, set.text);
    assert.ok(set.headers['x-etcd-index'] !== undefined, 'etcd headers pass through');
    const got = JSON.parse((await call(viaNginx, 'GET', '/v2/keys/dir?recursive=true')).text) as { node: { nodes: Array<{ key: string; value: string }> } };
    assert.deepEqual(got.node.nodes.map((n) => [n.key, n.value]), [['/dir/ключ x', 'héllo']]);

    // v2 long poll: pending until a write (made behind nginx's back), then answered with it
    await call(viaNginx, 'PUT', '/v2/keys/poll', 'value=1');
    // The server answers the headers at once (as etcd does) and the body when a change comes.
    const poll = await openStream(`${viaNginx}/v2/keys/poll?wait=true`, { dispatcher: agent }, 'v2 long poll');
    streams.push(poll);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(poll.rest(), '', 'the long poll waits for a change');
    assert.equal((await call(server.clientUrl, 'PUT', '/v2/keys/poll', 'value=2')).status, 200);
    const pollBody = JSON.parse(await poll.next(/^\{.*\}\n?$/s, 'long poll answer')) as { action: string; node: { value: string } };
    assert.deepEqual([pollBody.action, pollBody.node.value], ['set', '2']);
    // v2 stream=true: each event arrives before the next write is made
    const v2stream = await openStream(`${viaNginx}/v2/keys/s?wait=true&stream=true&recursive=true`, { dispatcher: agent }, 'v2 stream');
    streams.push(v2stream);
    for (let i = 1; i <= 3; i++) {
      assert.equal((await call(server.clientUrl, 'PUT', `/v2/keys/s/k${i}`, `value=v${i}`)).status, 201);
      const ev = await v2stream.next(new RegExp(`"key":"/s/k${i}","value":"v${i}"`), `v2 stream event ${i}`);
      assert.ok(ev);
      assert.doesNotMatch(v2stream.rest(), /\/s\/k\d/, 'no later event before its write');
    }
    assert.equal(v2stream.headers['x-accel-buffering'], 'no', 'nginx tells proxies in front of it not to buffer v2 watches');

    // /v3/watch through the gateway: the created message comes first, then each event on its own
    const v3stream = await openStream(`${viaNginx}/v3/watch`, {
      dispatcher: agent, method: 'POST', body: JSON.stringify({ create_request: { key: b64('w/'), range_end: b64('w0') } }),
    }, '/v3/watch');
    streams.push(v3stream);
    await v3stream.next(/"created":true/, '/v3/watch created message');
    for (let i = 1; i <= 3; i++) {
      const put = await call(viaNginx, 'POST', '/v3/kv/put', JSON.stringify({ key: b64(`w/${i}`), value: b64(`x${i}`) }), { 'content-type': 'application/json' });
      assert.equal(put.status, 200, put.text);
      await v3stream.next(new RegExp(`"key":"${b64(`w/${i}`)}","[^]*?"value":"${b64(`x${i}`)}"`), `/v3/watch event ${i}`);
      assert.doesNotMatch(v3stream.rest(), /"events"/, 'no later event before its write');
    }
    assert.equal(v3stream.headers['x-accel-buffering'], 'no', 'nginx tells proxies in front of it not to buffer /v3/watch');

    // advertised client URLs name nginx
    const machines = await call(viaNginx, 'GET', '/v2/machines');
    assert.equal(machines.text, viaNginx);
    const members = JSON.parse((await call(viaNginx, 'GET', '/v2/members')).text) as { members: Array<{ clientURLs: string[] }> };
    assert.deepEqual(members.members.map((m) => m.clientURLs), [[viaNginx]]);

    // the config gives long polls and streams hours, not nginx's default 60 s
    const shipped = readFileSync(SHIPPED_CONF, 'utf8');
    for (const loc of ['location /v2/keys {', 'location ~ ^/v3(beta|alpha)?/(watch|lease/keepalive|election/observe)$ {']) {
      const block = shipped.slice(shipped.indexOf(loc), shipped.indexOf('}', shipped.indexOf(loc)));
      assert.match(block, /proxy_read_timeout 1h;/, `${loc} has a long read timeout`);
    }

    // gRPC through nginx's http2 listener: etcdctl reads, writes, watches and lists members
    if (hasEtcd()) {
      const ep = `127.0.0.1:${grpcPort}`;
      assert.equal((await etcdctl(ep, ['put', 'g', 'via-nginx'])).stdout.trim(), 'OK');
      assert.equal((await etcdctl(ep, ['get', 'g', '--print-value-only'])).stdout.trim(), 'via-nginx');
      // A watch from the revision of a write already made: its event streams back at once.
      const rev = (JSON.parse((await etcdctl(server.endpoint, ['put', 'gw', 'e1', '-w', 'json'])).stdout) as { header: { revision: number } }).header.revision;
      const w = await etcdctl(ep, ['watch', 'gw', '--rev', String(rev)], { timeoutMs: 3_000 });
      assert.match(w.stdout, /^PUT\ngw\ne1$/m, `etcdctl watch through nginx: ${w.stdout} ${w.stderr}`);
      const ml = await etcdctl(ep, ['member', 'list']);
      assert.match(ml.stdout, new RegExp(`, ${viaNginx.replaceAll('.', '\\.')}, false`), ml.stdout);
    }
  } finally {
    for (const s of streams) s.close();
    await agent.destroy().catch(() => undefined);
    await nginx.stop();
    await server.stop();
    await removeTempDir(dir);
  }
});

test('the server asks proxies not to buffer /v3/watch: it streams even through a naive nginx config', { timeout: 60_000 }, async (t) => {
  if (!existsSync(NGINX_BIN)) return t.skip(`${NGINX_BIN} is not installed (apt-get install nginx; .ci/run installs it)`);
  const dir = await makeTempDir('nginx-naive-');
  const httpPort = await freePort();
  const server = await startOurServer();
  // nginx's defaults: proxy_buffering on, HTTP/1.0 to the upstream, 60 s read timeout.
  const site = `server {\n  listen 127.0.0.1:${httpPort};\n  location / {\n    proxy_pass http://127.0.0.1:${new URL(server.clientUrl).port};\n  }\n}\n`;
  const nginx = await startNginx(dir, site, httpPort);
  const agent = new Agent({ connections: 4 });
  const streams: StreamReader[] = [];
  try {
    const direct = await openStream(`${server.clientUrl}/v3/watch`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ create_request: { key: b64('n') } }) }, 'direct /v3/watch');
    streams.push(direct);
    await direct.next(/"created":true/, 'direct created message');
    assert.equal(direct.headers['x-accel-buffering'], 'no');

    const via = await openStream(`http://127.0.0.1:${httpPort}/v3/watch`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ create_request: { key: b64('n') } }) }, 'naive-proxy /v3/watch');
    streams.push(via);
    await via.next(/"created":true/, 'created message through a buffering nginx');
    for (let i = 1; i <= 2; i++) {
      const res = await request(`${server.clientUrl}/v3/kv/put`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ key: b64('n'), value: b64(`n${i}`) }) });
      assert.equal(res.statusCode, 200, await res.body.text());
      await via.next(new RegExp(`"value":"${b64(`n${i}`)}"`), `event ${i} through a buffering nginx`);
    }
  } finally {
    for (const s of streams) s.close();
    await agent.destroy().catch(() => undefined);
    await nginx.stop();
    await server.stop();
    await removeTempDir(dir);
  }
});
