// docker/ cannot be built or run here (no Docker), so this test keeps it honest by reading it:
// every flag the compose files pass to our image is one our flag table knows (and the whole
// command line passes our config validation with the image's ETCD_* defaults), or is listed in
// PENDING_FLAGS below with the issue that adds it; flags passed to real etcd images exist in
// etcd 3.4's --help; cluster members agree on --initial-cluster; the Dockerfile's ENTRYPOINT
// exists after a build and its HEALTHCHECK command, run for real, tells a live server from a dead
// port.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { flagSpecs } from '../../src/config/flags.js';
import { loadConfig } from '../../src/config/index.js';
import { ETCD_BIN, freePort, ourNodeFlags, PROJECT_ROOT, startOurServer } from '../helpers/procs.js';

/**
 * Flags the compose files use that the server does not accept yet, each with the issue that adds
 * it. When a flag lands in src/config/flags.ts this test fails until it is removed from here, so
 * the list only ever shrinks.
 */
const PENDING_FLAGS: Readonly<Record<string, string>> = {};

const DOCKER_DIR = join(PROJECT_ROOT, 'docker');
const COMPOSE_FILES = ['compose.single.yml', 'compose.cluster.yml', 'compose.gateway.yml'];
const OUR_IMAGE = 'etcd-gateway:local';
const ETCD_IMAGE = /^gcr\.io\/etcd-development\/etcd:v3\.4\.\d+$/;

// ---- a reader for the YAML subset docker/ keeps to ---------------------------------------------
// Block mappings and block lists, one plain or quoted scalar per line, full-line comments. Anything
// else (flow style, anchors, multi-line scalars, inline comments) is refused, so the files stay
// inside what this reader understands exactly.

type Yaml = string | null | Yaml[] | { [k: string]: Yaml };

interface Line {
  readonly no: number;
  readonly indent: number;
  readonly text: string;
}

function scalar(raw: string, no: number): string {
  const s = raw.trim();
  if (/^["']/.test(s)) {
    const q = s[0]!;
    if (s.length < 2 || !s.endsWith(q)) throw new Error(`line ${no}: unterminated quoted scalar ${s}`);
    const body = s.slice(1, -1);
    if (q === "'") return body.replaceAll("''", "'");
    if (/\\[^"\\]/.test(body)) throw new Error(`line ${no}: escapes other than \\" and \\\\ are outside the subset`);
    return body.replace(/\\(["\\])/g, '$1');
  }
  if (/^[[{&*!|>%@`]/.test(s)) throw new Error(`line ${no}: "${s}" is outside the YAML subset (flow style, anchors, tags, block scalars)`);
  if (/\s#/.test(s)) throw new Error(`line ${no}: inline comments are outside the subset`);
  return s;
}

function parseYaml(text: string): Yaml {
  const lines: Line[] = [];
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '' || l.trimStart().startsWith('#')) return;
    if (l.includes('\t')) throw new Error(`line ${i + 1}: tab`);
    lines.push({ no: i + 1, indent: l.length - l.trimStart().length, text: l.trim() });
  });
  let pos = 0;
  const block = (indent: number): Yaml => {
    const first = lines[pos];
    if (first === undefined || first.indent < indent) return null;
    if (first.text.startsWith('- ') || first.text === '-') {
      const list: Yaml[] = [];
      while (pos < lines.length && lines[pos]!.indent === first.indent && lines[pos]!.text.startsWith('- ')) {
        const l = lines[pos++]!;
        const item = l.text.slice(2);
        if (/^[\w.-]+:(\s|$)/.test(item)) throw new Error(`line ${l.no}: mappings inside lists are outside the subset`);
        list.push(scalar(item, l.no));
      }
      return list;
    }
    const map: Record<string, Yaml> = {};
    while (pos < lines.length && lines[pos]!.indent === first.indent) {
      const l = lines[pos++]!;
      const m = /^([\w.-]+):(?:\s+(.*))?$/.exec(l.text);
      if (m === null) throw new Error(`line ${l.no}: expected "key:" or "key: value", got ${l.text}`);
      if (Object.hasOwn(map, m[1]!)) throw new Error(`line ${l.no}: duplicate key ${m[1]}`);
      const next = lines[pos];
      map[m[1]!] = m[2] !== undefined ? scalar(m[2], l.no) : next !== undefined && next.indent > l.indent ? block(next.indent) : null;
    }
    if (pos < lines.length && lines[pos]!.indent > first.indent) throw new Error(`line ${lines[pos]!.no}: unexpected indentation`);
    return map;
  };
  const doc = block(0);
  if (pos !== lines.length) throw new Error(`line ${lines[pos]!.no}: unexpected indentation`);
  return doc;
}

function asMap(v: Yaml, what: string): Record<string, Yaml> {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${what} is a mapping`);
  return v;
}

function asList(v: Yaml, what: string): string[] {
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${what} is a list of strings`);
  return v as string[];
}

/** "--name=value" -> ["name", "value"]; compose commands here always use the one-word form. */
function splitFlag(arg: string, what: string): [string, string] {
  const m = /^--([a-z0-9-]+)=(.*)$/s.exec(arg);
  assert.ok(m, `${what}: "${arg}" is written as --flag=value`);
  return [m[1]!, m[2]!];
}

// ---- the Dockerfile ----------------------------------------------------------------------------

interface Dockerfile {
  readonly instructions: Array<{ op: string; args: string }>;
  readonly env: Record<string, string>;
}

function readDockerfile(): Dockerfile {
  const text = readFileSync(join(DOCKER_DIR, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const instructions = text.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => {
      const m = /^([A-Z]+)\s+(.*)$/.exec(l.trim());
      assert.ok(m, `Dockerfile line "${l}"`);
      return { op: m[1]!, args: m[2]! };
    });
  // The runtime stage is everything after the last FROM.
  const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
  const env: Record<string, string> = {};
  for (const i of instructions.slice(lastFrom)) {
    if (i.op !== 'ENV') continue;
    for (const m of i.args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return { instructions, env };
}

function last(df: Dockerfile, op: string): string {
  const found = df.instructions.filter((i) => i.op === op);
  assert.ok(found.length > 0, `the Dockerfile has ${op}`);
  return found[found.length - 1]!.args;
}

// ---- tests -------------------------------------------------------------------------------------

test('compose files pass only flags our server knows or that a named issue adds', (t) => {
  const df = readDockerfile();
  for (const [k] of Object.entries(df.env).filter(([k]) => k.startsWith('ETCD_'))) {
    const flag = k.slice(5).toLowerCase().replaceAll('_', '-');
    assert.ok(Object.hasOwn(flagSpecs, flag), `Dockerfile ENV ${k} names the flag --${flag}`);
  }
  const etcdHelp = existsSync(ETCD_BIN) ? spawnSync(ETCD_BIN, ['--help'], { encoding: 'utf8' }) : undefined;
  const etcdFlags = new Set([...`${etcdHelp?.stdout ?? ''}${etcdHelp?.stderr ?? ''}`.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]!));
  if (etcdHelp !== undefined) assert.ok(etcdFlags.has('initial-cluster') && etcdFlags.size > 50, 'etcd --help lists its flags');
  const pendingUsed = new Set<string>();
  let ourServices = 0;
  for (const file of COMPOSE_FILES) {
    const doc = asMap(parseYaml(readFileSync(join(DOCKER_DIR, file), 'utf8')), file);
    const services = asMap(doc.services!, `${file} services`);
    const members: Array<{ name: string; peer: string; cluster: string }> = [];
    for (const [svc, raw] of Object.entries(services)) {
      const s = asMap(raw, `${file} ${svc}`);
      const what = `${file} ${svc}`;
      const command = asList(s.command!, `${what} command`);
      const flags = new Map<string, string>();
      if (s.image === OUR_IMAGE) {
        ourServices++;
        const build = asMap(s.build!, `${what} build`);
        assert.equal(build.context, '..', `${what}: builds from the repository root`);
        assert.ok(existsSync(join(DOCKER_DIR, '..', String(build.dockerfile))), `${what}: ${String(build.dockerfile)} exists`);
        const known: string[] = [];
        for (const arg of command) {
          const [name, value] = splitFlag(arg, what);
          assert.ok(!flags.has(name), `${what}: --${name} given once`);
          flags.set(name, value);
          if (Object.hasOwn(flagSpecs, name)) known.push(arg);
          else if (Object.hasOwn(PENDING_FLAGS, name)) pendingUsed.add(name);
          else assert.fail(`${what}: --${name} is neither in src/config/flags.ts nor in PENDING_FLAGS`);
        }
        // The known flags, with the image's ENV defaults underneath, pass the server's own validation.
        const r = loadConfig(known, df.env);
        assert.equal(r.kind, 'run', `${what}: ${known.join(' ')}`);
      } else {
        assert.match(String(s.image), ETCD_IMAGE, `${what}: a real etcd 3.4 image`);
        assert.equal(command[0], '/usr/local/bin/etcd', `${what}: runs etcd`);
        for (const arg of command.slice(1)) {
          const [name, value] = splitFlag(arg, what);
          flags.set(name, value);
          if (etcdHelp !== undefined) assert.ok(etcdFlags.has(name), `${what}: --${name} is a flag of etcd 3.4 (etcd --help)`);
        }
      }
      if (flags.has('initial-cluster')) {
        members.push({ name: flags.get('name')!, peer: flags.get('initial-advertise-peer-urls')!, cluster: flags.get('initial-cluster')! });
      }
    }
    // Every member of a cluster lists the same members, and each is in the list with its own peer URL.
    if (members.length > 0) {
      const cluster = members[0]!.cluster;
      assert.deepEqual(members.map((m) => m.cluster), members.map(() => cluster), `${file}: one --initial-cluster`);
      assert.deepEqual(cluster.split(',').sort(), members.map((m) => `${m.name}=${m.peer}`).sort(), `${file}: --initial-cluster names each member's peer URL`);
    }
  }
  assert.equal(ourServices, 1 + 3 + 1, 'our image runs once in single, three times in cluster, once in gateway');
  t.diagnostic(`flags pending in later issues: ${Object.entries(PENDING_FLAGS).map(([f, why]) => `--${f} (${why})`).join(', ')}`);
  for (const f of Object.keys(PENDING_FLAGS)) {
    assert.ok(!Object.hasOwn(flagSpecs, f), `--${f} has landed in src/config/flags.ts: remove it from PENDING_FLAGS`);
    assert.ok(pendingUsed.has(f), `PENDING_FLAGS lists --${f}, which no compose file uses`);
  }
});

test('the YAML subset reader refuses what it does not understand', () => {
  assert.deepEqual(parseYaml('a:\n  b: "x: y"\n  c:\n    - --f=1\n    - \'q\'\nd:\n'), { a: { b: 'x: y', c: ['--f=1', 'q'] }, d: null });
  for (const bad of ['a: [1, 2]', 'a: &x 1', 'a: 1 # c', 'a:\n  - b: 1', 'a: 1\na: 2', 'a: |\n  x']) {
    assert.throws(() => parseYaml(bad), Error, bad);
  }
});

test('Dockerfile: entrypoint after a build, non-root user, data volume, and a HEALTHCHECK that works', async () => {
  const df = readDockerfile();
  const froms = df.instructions.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.deepEqual(froms, ['node:20-bookworm-slim AS build', 'node:20-bookworm-slim AS runtime'], 'two stages on Node 20 slim');
  const entry = JSON.parse(last(df, 'ENTRYPOINT')) as string[];
  const flags = ourNodeFlags();
  assert.deepEqual(entry.slice(0, 1 + flags.length), ['node', ...flags], 'the node flags of main.js\'s first line');
  const script = entry[1 + flags.length]!;
  assert.ok(existsSync(join(PROJECT_ROOT, script)), `${script} exists after the build`);
  const user = last(df, 'USER');
  assert.ok(user !== 'root' && user !== '0', `runs as ${user}, not root`);
  assert.deepEqual(JSON.parse(last(df, 'VOLUME')), [df.env.ETCD_DATA_DIR], 'the data dir is the volume');
  assert.deepEqual(last(df, 'EXPOSE').split(/\s+/), ['2379', '2380']);
  // Every path the Dockerfile copies from the context exists and is not excluded by .dockerignore.
  const ignored = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const c of df.instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    for (const src of c.args.split(/\s+/).slice(0, -1)) {
      assert.ok(existsSync(join(PROJECT_ROOT, src)), `COPY ${src} exists`);
      assert.ok(!ignored.includes(src), `COPY ${src} is not in .dockerignore`);
    }
  }
  assert.ok(ignored.includes('node_modules') && ignored.includes('dist'), '.dockerignore keeps node_modules and dist out of the context');

  // HEALTHCHECK CMD ["node", "-e", "<script>"]: run that script against a live server and a dead port.
  const hc = /CMD\s+(\[.*\])$/.exec(last(df, 'HEALTHCHECK'));
  assert.ok(hc, 'HEALTHCHECK uses the exec form');
  const argv = JSON.parse(hc[1]!) as string[];
  assert.equal(argv[0], 'node', 'the health check runs node (slim images have no curl)');
  assert.match(argv.join(' '), /\/health/);
  const runCheck = (url: string | undefined): number | null => spawnSync(process.execPath, argv.slice(1), {
    env: { ...process.env, ...(url === undefined ? {} : { ETCD_GATEWAY_HEALTH_URL: url }) }, timeout: 10_000,
  }).status;
  const server = await startOurServer();
  try {
    assert.equal(runCheck(`${server.clientUrl}/health`), 0, 'healthy server: exit 0');
  } finally {
    await server.stop();
  }
  assert.equal(runCheck(`http://127.0.0.1:${await freePort()}/health`), 1, 'nothing listening: exit 1');
});
