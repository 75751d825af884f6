// Invariant checks of the raft core. A failed check means a bug in this package (or a caller that
// broke the Ready/advance contract), never bad input from a peer: peers' messages are validated.

export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

/**
 * Checks too costly for the write path (they walk whole logs on every append) run only when this
 * is on: the raft tests and the safety simulator (test/raft, test/sim) turn it on.
 */
export let debugChecks = false;

export function setDebugChecks(on: boolean): void {
  debugChecks = on;
}

export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}

export function assertNever(x: never): never {
  throw new RaftInvariantError(`unexpected variant: ${JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
}
