// Linux /proc readers for a process we started (by PID), and CPU pinning through taskset(1).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** clock ticks per second for /proc/PID/stat (getconf CLK_TCK; 100 on every Linux we target) */
const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

function statusField(pid: number, field: string): number | undefined {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** Peak resident set size (VmHWM) in bytes. */
export function peakRss(pid: number): number | undefined {
  return statusField(pid, 'VmHWM');
}

export function currentRss(pid: number): { total?: number; anon?: number; file?: number } {
  const out: { total?: number; anon?: number; file?: number } = {};
  const t = statusField(pid, 'VmRSS');
  const a = statusField(pid, 'RssAnon');
  const f = statusField(pid, 'RssFile');
  if (t !== undefined) out.total = t;
  if (a !== undefined) out.anon = a;
  if (f !== undefined) out.file = f;
  return out;
}

/** User + system CPU seconds consumed so far by the process (all its threads), or by one thread of it. */
export function cpuSeconds(pid: number, tid?: number): number {
  const text = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: fields after the last ')' are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLK_TCK;
}

/** Pins every thread of pid to the CPU list (e.g. "0" or "0-1"); returns false if taskset failed. */
export function pin(pid: number, cpus: string): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  return r.status === 0;
}

export function mib(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** CPU seconds all CPUs spent busy (not idle/iowait) since boot, from /proc/stat. */
export function systemBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  return busy / CLK_TCK;
}

/** Bytes the process caused to be written to storage so far (/proc/PID/io write_bytes). */
export function writeBytes(pid: number): number | undefined {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}
