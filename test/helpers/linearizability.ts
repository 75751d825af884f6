// A linearizability checker for single-key registers (Wing & Gong's search with Lowe's memoization,
// as Knossos and Porcupine do it): is there a total order of the operations, consistent with
// real time (an operation that returned before another was called comes first), in which every
// read sees the latest write and every compare-and-swap's outcome is right?
//
// An operation whose outcome is unknown (timed out, connection lost) may have taken effect at any
// time after its call, or never: it has no return time and is tried both ways. Keys are checked
// independently (a register per key is P-compositional).

export type RegisterOp =
  | { readonly kind: 'read'; readonly value: string | undefined }
  | { readonly kind: 'write'; readonly value: string }
  | { readonly kind: 'cas'; readonly expected: string; readonly value: string; readonly ok: boolean };

export interface HistoryOp {
  readonly key: string;
  readonly call: number;
  /** undefined: the outcome is unknown (the op may or may not have happened). */
  readonly ret: number | undefined;
  readonly op: RegisterOp;
  /** For failure reports. */
  readonly client?: number;
}

export interface CheckResult {
  readonly ok: boolean;
  /** The key whose history has no linearization, with its operations (sorted by call). */
  readonly key?: string;
  readonly ops?: readonly HistoryOp[];
}

/** Checks every key's history; stops at the first key that cannot be linearized. */
export function checkRegisters(history: readonly HistoryOp[], initial: string | undefined = undefined): CheckResult {
  const byKey = new Map<string, HistoryOp[]>();
  for (const h of history) {
    // A read whose answer never came tells nothing.
    if (h.op.kind === 'read' && h.ret === undefined) continue;
    let l = byKey.get(h.key);
    if (l === undefined) byKey.set(h.key, (l = []));
    l.push(h);
  }
  for (const [key, ops] of byKey) {
    ops.sort((a, b) => a.call - b.call);
    if (!linearizable(ops, initial)) return { ok: false, key, ops };
  }
  return { ok: true };
}

function linearizable(ops: readonly HistoryOp[], initial: string | undefined): boolean {
  const n = ops.length;
  const ret = ops.map((o) => o.ret ?? Infinity);
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  // Iterative DFS over (set of done ops, register value); the stack holds choices to undo.
  const search = (state: string | undefined, left: number): boolean => {
    if (left === 0) return true;
    const memo = `${state === undefined ? '\u0000' : 'v' + state}|${doneKey(done)}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    // Only an op called before every pending op's return can go next.
    let minRet = Infinity;
    for (let i = 0; i < n; i++) if (done[i] === 0 && ret[i]! < minRet) minRet = ret[i]!;
    for (let i = 0; i < n; i++) {
      if (done[i] !== 0 || ops[i]!.call > minRet) continue;
      const o = ops[i]!;
      const known = o.ret !== undefined;
      const next = step(o.op, state, known);
      done[i] = 1;
      for (const s of next) if (search(s.state, left - 1)) return true;
      done[i] = 0;
    }
    return false;
  };
  return search(initial, n);
}

/** The states an op can leave behind (none: impossible here). Unknown ops may also be no-ops. */
function step(op: RegisterOp, state: string | undefined, known: boolean): { state: string | undefined }[] {
  switch (op.kind) {
    case 'read':
      return op.value === state ? [{ state }] : [];
    case 'write':
      return known ? [{ state: op.value }] : [{ state: op.value }, { state }];
    case 'cas': {
      const matches = state === op.expected;
      if (!known) return matches ? [{ state: op.value }, { state }] : [{ state }];
      if (op.ok) return matches ? [{ state: op.value }] : [];
      return matches ? [] : [{ state }];
    }
  }
}

function doneKey(done: Uint8Array): string {
  let s = '';
  for (let i = 0; i < done.length; i += 16) {
    let v = 0;
    for (let j = i; j < Math.min(i + 16, done.length); j++) v = (v << 1) | done[j]!;
    s += String.fromCharCode(v + 0x100);
  }
  return s;
}
