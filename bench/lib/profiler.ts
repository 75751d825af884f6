// CPU profiling of our server over exactly the measured window, through the V8 inspector.
//
// `node --cpu-prof` cannot be used: Node 20 refuses it in NODE_OPTIONS, and the test harness
// (test/helpers/procs.ts) puts the script first in argv, so the only way to pass a flag to our
// server's node is NODE_OPTIONS. `--inspect=127.0.0.1:PORT` is allowed there; the bench then
// drives Profiler.start/stop over the DevTools protocol, so each workload gets its own profile
// without warmup, preload or shutdown in it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'undici';
import { freePort, startOurServer, type Server } from '../../test/helpers/procs.js';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number; scriptId: string };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export class InspectorProfiler {
  private nextId = 1;
  private readonly pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.rej(new Error(msg.error.message));
      else p.res(msg.result);
    });
  }

  static async connect(inspectPort: number, timeoutMs = 10_000): Promise<InspectorProfiler> {
    const deadline = Date.now() + timeoutMs;
    let url: string | undefined;
    for (;;) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl?: string }>;
        url = list[0]?.webSocketDebuggerUrl;
        if (url !== undefined) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`inspector on port ${inspectPort} not reachable`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ws = new WebSocket(url);
    await new Promise<void>((res, rej) => {
      ws.addEventListener('open', () => res(), { once: true });
      ws.addEventListener('error', () => rej(new Error(`inspector websocket ${url} failed`)), { once: true });
    });
    const p = new InspectorProfiler(ws);
    await p.send('Profiler.enable');
    return p;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((res, rej) => {
      this.pending.set(id, { res, rej });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(samplingIntervalUs = 250): Promise<void> {
    await this.send('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await this.send('Profiler.start');
  }

  async stop(): Promise<CpuProfile> {
    const r = (await this.send('Profiler.stop')) as { profile: CpuProfile };
    return r.profile;
  }

  close(): void {
    this.ws.close();
  }
}

/** Our server with `--inspect` on a free loopback port (through NODE_OPTIONS, see above), connected. */
export async function startOursWithInspector(extraArgs: string[] = []): Promise<{ srv: Server; profiler: InspectorProfiler }> {
  const inspectPort = await freePort();
  const nodeOptions = [process.env.NODE_OPTIONS ?? '', `--inspect=127.0.0.1:${inspectPort}`].join(' ').trim();
  const srv = await startOurServer({ env: { NODE_OPTIONS: nodeOptions }, extraArgs });
  try {
    return { srv, profiler: await InspectorProfiler.connect(inspectPort) };
  } catch (e) {
    await srv.stop();
    throw e;
  }
}

/** Writes FILE.cpuprofile and its summary FILE.md next to it; returns the summary. */
export function saveProfile(file: string, profile: CpuProfile, title: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(profile));
  const summary = formatProfileSummary(title, summarizeProfile(profile));
  writeFileSync(file.replace(/\.cpuprofile$/, '.md'), summary + '\n');
  return summary;
}

// ---------------------------------------------------------------------------------------------
// summary

const SPECIAL = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + '/dist/'.length);
  return url.replace(/^node:internal\//, 'node:');
}

/** The bucket a frame's self time is charged to: a package, a node core module, our file. */
export function groupOf(cf: CpuProfileNode['callFrame']): string {
  const { url, functionName } = cf;
  if (url === '') return SPECIAL.has(functionName) ? functionName : '(native/builtin)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.startsWith('node:')) {
    const p = url.replace(/^node:(internal\/)?/, '');
    return 'node:' + (p.split('/').slice(0, 2).join('/'));
  }
  const d = url.indexOf('/dist/');
  if (d >= 0) {
    const rel = url.slice(d + '/dist/'.length);
    return 'ours:' + rel.split('/').slice(0, 3).join('/');
  }
  return url;
}

const sourceMaps = new Map<string, SourceMap | null>();

/** file:///.../dist/src/x.js line/col (0-based) -> "src/x.ts:LINE" through the emitted .js.map. */
function originalLocation(url: string, line: number, col: number): string | undefined {
  if (!url.startsWith('file://') || !url.includes('/dist/')) return undefined;
  let sm = sourceMaps.get(url);
  if (sm === undefined) {
    sm = null;
    try {
      const mapFile = fileURLToPath(url) + '.map';
      if (existsSync(mapFile)) sm = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')));
    } catch {
      sm = null;
    }
    sourceMaps.set(url, sm);
  }
  if (sm === null) return undefined;
  const e = sm.findEntry(line, col) as { originalSource?: string; originalLine?: number };
  if (e.originalSource === undefined || e.originalLine === undefined) return undefined;
  const m = /(?:^|\/)((?:src|bench|test)\/.*)$/.exec(e.originalSource);
  return `${m?.[1] ?? e.originalSource}:${e.originalLine + 1}`;
}

function frameKey(cf: CpuProfileNode['callFrame']): string {
  const name = cf.functionName === '' ? '(anonymous)' : cf.functionName;
  if (cf.url === '') return name;
  return `${name} ${originalLocation(cf.url, cf.lineNumber, cf.columnNumber) ?? `${shortUrl(cf.url)}:${cf.lineNumber + 1}`}`;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  selfByFunction: Array<[string, number]>;
  selfByGroup: Array<[string, number]>;
  /** inclusive time of our own (dist/src) functions */
  inclusiveOurs: Array<[string, number]>;
  /** inclusive time of every function (each counted once per sample even if recursive) */
  inclusiveAll: Array<[string, number]>;
}

export function summarizeProfile(p: CpuProfile): ProfileSummary {
  const byId = new Map<number, CpuProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // Time per sample: the delta to the next sample (as DevTools does); the last gets the mean.
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  const mean = samples.length > 0 ? (p.endTime - p.startTime) / samples.length : 0;
  const selfUs = new Map<number, number>();
  for (let i = 0; i < samples.length; i++) {
    const d = deltas[i + 1] ?? mean;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + d);
  }
  if (samples.length === 0) for (const n of p.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * 1000);

  const fn = new Map<string, number>();
  const grp = new Map<string, number>();
  const incl = new Map<string, number>();
  const inclOurs = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined) continue;
    total += us;
    if (n.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const k = frameKey(n.callFrame);
    fn.set(k, (fn.get(k) ?? 0) + us);
    const g = groupOf(n.callFrame);
    grp.set(g, (grp.get(g) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur)!;
      if (SPECIAL.has(cn.callFrame.functionName)) continue;
      const ck = frameKey(cn.callFrame);
      if (seen.has(ck)) continue;
      seen.add(ck);
      incl.set(ck, (incl.get(ck) ?? 0) + us);
      if (cn.callFrame.url.includes('/dist/src/')) inclOurs.set(ck, (inclOurs.get(ck) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>): Array<[string, number]> =>
    [...m].map(([k, v]): [string, number] => [k, v / 1000]).sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    selfByFunction: sorted(fn),
    selfByGroup: sorted(grp),
    inclusiveOurs: sorted(inclOurs),
    inclusiveAll: sorted(incl),
  };
}

export function formatProfileSummary(title: string, s: ProfileSummary, top = 25): string {
  const busy = s.totalMs - s.idleMs;
  const pct = (ms: number): string => `${((100 * ms) / busy).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push(`#### ${title}`);
  lines.push('');
  lines.push(
    `sampled ${s.totalMs.toFixed(0)} ms of the main thread, ${s.idleMs.toFixed(0)} ms idle (${((100 * s.idleMs) / Math.max(1, s.totalMs)).toFixed(1)}%); ` +
      `percentages below are of the ${busy.toFixed(0)} ms busy time`,
  );
  lines.push('');
  lines.push('| self by package / module | ms | % |', '| --- | ---: | ---: |');
  for (const [k, v] of s.selfByGroup.slice(0, 15)) lines.push(`| ${k} | ${v.toFixed(0)} | ${pct(v)} |`);
  lines.push('');
  lines.push('| top functions by self time | ms | % |', '| --- | ---: | ---: |');
  for (const [k, v] of s.selfByFunction.slice(0, top)) lines.push(`| \`${k}\` | ${v.toFixed(0)} | ${pct(v)} |`);
  lines.push('');
  lines.push('| our functions by inclusive time | ms | % |', '| --- | ---: | ---: |');
  for (const [k, v] of s.inclusiveOurs.slice(0, 15)) lines.push(`| \`${k}\` | ${v.toFixed(0)} | ${pct(v)} |`);
  return lines.join('\n');
}
