// Memory cost of large puts through the v3 JSON gateway, seen from outside the server process:
// VmRSS / VmHWM / RssAnon of its PID (/proc/PID/status) around a run of sequential and then
// concurrent 1 MiB puts. VmHWM is reset before each phase through /proc/PID/clear_refs ("5"),
// so each phase's peak is its own; where that is refused the peak since start is used (an upper
// bound). RSS is also polled every few ms during each phase (RssAnon: the heap, not the mmapped DB).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Pool } from 'undici';

export interface MemSample {
  rss: number;
  hwm: number;
  anon: number;
}

export function memSample(pid: number): MemSample {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (m === null) throw new Error(`/proc/${pid}/status: no ${name}`);
    return Number(m[1]) * 1024;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM'), anon: field('RssAnon') };
}

/** Resets VmHWM to the current RSS; false if the kernel refused. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface PhaseResult {
  /** requests in flight at once */
  concurrency: number;
  requests: number;
  before: MemSample;
  after: MemSample;
  /** highest RssAnon seen by polling during the phase */
  polledPeakAnon: number;
  /** VmHWM after the phase minus VmRSS before it */
  peakGrowth: number;
  /** polled peak RssAnon minus RssAnon before */
  anonGrowth: number;
  /** peakGrowth / (concurrency × request body bytes) */
  amplification: number;
  /** anonGrowth / (concurrency × request body bytes) */
  anonAmplification: number;
  seconds: number;
}

export interface BigPutResult {
  valueBytes: number;
  /** JSON request body bytes of one put (base64 key and value) */
  bodyBytes: number;
  hwmReset: boolean;
  idle: MemSample;
  sequential: PhaseResult;
  concurrent: PhaseResult;
}

export interface BigPutOptions {
  /** http://127.0.0.1:PORT */
  url: string;
  pid: number;
  valueBytes?: number;
  sequential?: number;
  concurrency?: number;
  /** rounds of `concurrency` puts in flight at once */
  rounds?: number;
  pollMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function measureBigPuts(o: BigPutOptions): Promise<BigPutResult> {
  const valueBytes = o.valueBytes ?? 1 << 20;
  const nSeq = o.sequential ?? 8;
  const conc = o.concurrency ?? 8;
  const rounds = o.rounds ?? 2;
  const pollMs = o.pollMs ?? 2;
  const value = randomBytes(valueBytes).toString('base64');
  const bodies = Array.from({ length: conc }, (_, i) => Buffer.from(JSON.stringify({ key: Buffer.from(`mem/${i}`).toString('base64'), value })));
  const bodyBytes = bodies[0]!.length;
  const pool = new Pool(o.url, { connections: conc, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const put = async (body: Buffer): Promise<void> => {
    const r = await pool.request({ path: '/v3/kv/put', method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const text = await r.body.text();
    if (r.statusCode !== 200 || !/"revision":"\d+"/.test(text)) throw new Error(`1 MiB put: HTTP ${r.statusCode}: ${text.slice(0, 300)}`);
  };
  let hwmReset = true;
  const phase = async (concurrency: number, requests: number, run: () => Promise<void>): Promise<PhaseResult> => {
    await sleep(200);
    hwmReset = resetPeak(o.pid) && hwmReset;
    const before = memSample(o.pid);
    let polledPeakAnon = before.anon;
    const timer = setInterval(() => {
      try {
        polledPeakAnon = Math.max(polledPeakAnon, memSample(o.pid).anon);
      } catch {
        // process gone: the phase fails on its own
      }
    }, pollMs);
    const t0 = process.hrtime.bigint();
    try {
      await run();
    } finally {
      clearInterval(timer);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = memSample(o.pid);
    polledPeakAnon = Math.max(polledPeakAnon, after.anon);
    const peakGrowth = Math.max(0, after.hwm - before.rss);
    const anonGrowth = Math.max(0, polledPeakAnon - before.anon);
    const inflightBytes = concurrency * bodyBytes;
    return {
      concurrency, requests, before, after, polledPeakAnon, peakGrowth, anonGrowth,
      amplification: peakGrowth / inflightBytes, anonAmplification: anonGrowth / inflightBytes, seconds,
    };
  };
  try {
    // One small request opens a connection (its buffers are not part of the measurement).
    await Promise.all(Array.from({ length: conc }, async () => {
      const r = await pool.request({ path: '/v3/kv/range', method: 'POST', body: '{"key":"bWVtLzA="}' });
      await r.body.text();
    }));
    const idle = memSample(o.pid);
    const sequential = await phase(1, nSeq, async () => {
      for (let i = 0; i < nSeq; i++) await put(bodies[i % conc]!);
    });
    const concurrent = await phase(conc, conc * rounds, async () => {
      for (let r = 0; r < rounds; r++) await Promise.all(bodies.map((b) => put(b)));
    });
    return { valueBytes, bodyBytes, hwmReset, idle, sequential, concurrent };
  } finally {
    await pool.close();
  }
}

const mibs = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

export function formatBigPut(name: string, r: BigPutResult): string {
  const line = (label: string, p: PhaseResult): string =>
    `  ${label}: ${p.requests} puts, ${p.concurrency} in flight, ${p.seconds.toFixed(2)} s; RSS before ${mibs(p.before.rss)} (anon ${mibs(p.before.anon)}), ` +
    `peak (VmHWM) ${mibs(p.after.hwm)} => growth ${mibs(p.peakGrowth)} = ${p.amplification.toFixed(2)}x the in-flight body bytes; ` +
    `polled anon peak growth ${mibs(p.anonGrowth)} = ${p.anonAmplification.toFixed(2)}x`;
  return [
    `${name}: ${mibs(r.valueBytes)} value, ${(r.bodyBytes / 1e6).toFixed(2)} MB JSON body per put${r.hwmReset ? '' : ' (VmHWM reset refused: peaks since start, upper bounds)'}`,
    line('sequential', r.sequential),
    line('concurrent', r.concurrent),
  ].join('\n');
}
