// Benchmark knobs from the environment (BENCH_*), checked: a typo fails loudly.

export function envNum(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: not a non-negative number`);
  return n;
}

export function envList(name: string, all: readonly string[]): string[] {
  const v = process.env[name];
  if (v === undefined || v === '') return [...all];
  const out = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of out) if (!all.includes(s)) throw new Error(`${name}: unknown "${s}" (known: ${all.join(', ')})`);
  return out;
}
