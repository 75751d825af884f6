// The errno-style code of a failure (ECONNREFUSED, UND_ERR_SOCKET, ...), also inside the
// AggregateError that a connect to a name with several addresses throws.

export function errCode(e: unknown): string | undefined {
  if (e instanceof AggregateError) return errCode(e.errors[0]);
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}
