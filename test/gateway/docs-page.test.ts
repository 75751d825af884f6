// GET /docs in a real browser: headless Chromium (--dump-dom, no network but the server) loads the
// page, its inline script fetches /openapi.json and renders every route. Skipped without Chromium
// (CI installs the Debian package).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { gatewayRoutes } from '../../src/gateway/index.js';
import { DOCS_PATH, gatewayOpenApiDocument, OPENAPI_PATH } from '../../src/http/docs.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';
import { startGateway, type GatewayServer } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install the Debian package chromium to run this test`;

/** The DOM of url after its scripts ran (virtual time), as Chromium's --dump-dom prints it. */
async function dumpDom(url: string): Promise<string> {
  const profile = await makeTempDir('chromium-');
  try {
    const args = [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`,
      '--virtual-time-budget=5000', '--dump-dom', url,
    ];
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
        else reject(new Error(`chromium exited ${code}: ${err.slice(-2000)}`));
      });
    });
  } finally {
    await removeTempDir(profile);
  }
}

describe('the /docs page', { skip }, () => {
  let s: GatewayServer;
  before(async () => { s = await startGateway(); });
  after(async () => { await s.close(); });

  const get = async (path: string): Promise<{ status: number; type: string; text: string }> => {
    const r = await fetch(s.url + path);
    return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() };
  };

  test('the server serves the document built from the reflection', async () => {
    const r = await get(OPENAPI_PATH);
    assert.equal(r.status, 200, `GET ${OPENAPI_PATH} answered ${r.status}: is docsRoutes(app, gatewayOpenApiDocument()) in src/server.ts?`);
    assert.match(r.type, /^application\/json/);
    assert.deepEqual(JSON.parse(r.text), JSON.parse(JSON.stringify(gatewayOpenApiDocument())));
  });

  test('the page is self-contained: nothing loaded from another origin, routes rendered by script', async () => {
    const r = await get(DOCS_PATH);
    assert.equal(r.status, 200, `GET ${DOCS_PATH} answered ${r.status}: is docsRoutes(app, gatewayOpenApiDocument()) in src/server.ts?`);
    assert.match(r.type, /^text\/html/);
    assert.doesNotMatch(r.text, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(r.text, /@import|https?:\/\//i);
    assert.doesNotMatch(r.text, /\/v3\/kv\/range/);
  });

  test('headless Chromium renders every route', async () => {
    const dom = await dumpDom(`${s.url}${DOCS_PATH}#v3_lease_grant`);
    const failed = /<p class="error">[^<]*/.exec(dom);
    assert.equal(failed, null, `the page failed: ${failed?.[0] ?? ''}`);
    const opsPaths = ['/health', '/livez', '/readyz', '/metrics', '/version'];
    for (const path of ['/v3/kv/range', '/v3/watch', '/v3/lease/grant', ...opsPaths]) {
      assert.ok(dom.includes(`data-path="${path}"`), `${path} rendered`);
    }
    const rendered = [...dom.matchAll(/<details class="op"[^>]*data-path="([^"]+)"/g)].map((m) => m[1]);
    for (const route of gatewayRoutes) assert.ok(rendered.includes(route.path), `${route.path} rendered`);
    assert.equal(rendered.length, gatewayRoutes.length + opsPaths.length);
    assert.match(dom, /<details class="op" id="v3_lease_grant" data-path="\/v3\/lease\/grant" open=""/, 'the #fragment opens its route');
    assert.doesNotMatch(dom, /id="v3_kv_range" data-path="\/v3\/kv\/range" open/);
    for (const text of ['<h4>Request body</h4>', 'etcdserverpb.RangeRequest', '<code>range_end</code>', 'class="badge">stream<']) {
      assert.ok(dom.includes(text), `${text} in the page`);
    }
  });
});
