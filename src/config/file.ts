// --config-file: etcd's YAML configuration file (the keys of etcd 3.4's etcd.conf.yml.sample are
// the flag names). As in etcd, values are typed the way Go's JSON decoder reads them: strings for
// names, paths and comma-separated URL lists, integers for counts and milliseconds, integer
// nanoseconds for durations (Go's time.Duration), booleans for switches. Keys this server does not
// act on are ignored, as etcd's decoder ignores unknown keys; the caller warns about them.
import { parseDocument } from 'yaml';
import { FlagError, flagSpecs, type FlagName, type FlagSpec } from './flags.js';

export interface ConfigFileValues {
  /** Flag values as the flag parser would have read them (strings). */
  readonly values: Partial<Record<FlagName, string>>;
  /** Keys present in the file that this server does not use. */
  readonly ignored: readonly string[];
}

function goType(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

/** The keys of etcd's `client-transport-security` and `peer-transport-security` objects this server acts on. */
const TLS_KEYS = new Set(['cert-file', 'key-file', 'trusted-ca-file', 'client-cert-auth', 'auto-tls']);
/** The nested TLS objects and the prefix their keys take as flags (--cert-file, --peer-cert-file). */
const TLS_BLOCKS: Record<string, string> = { 'client-transport-security': '', 'peer-transport-security': 'peer-' };

/** Parses the file's text; `path` only names it in errors. */
export function parseConfigFile(text: string, path: string): ConfigFileValues {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new FlagError(`config file ${path}: invalid YAML: ${doc.errors[0]!.message}`);
  const root: unknown = doc.toJS();
  if (root === null || root === undefined) return { values: {}, ignored: [] };
  if (typeof root !== 'object' || Array.isArray(root)) throw new FlagError(`config file ${path}: the top level must be a mapping of flag names to values`);
  const values: Partial<Record<FlagName, string>> = {};
  const ignored: string[] = [];
  const entries = Object.entries(root as Record<string, unknown>).flatMap(([key, v]): [string, unknown][] => {
    // etcd's YAML nests the TLS settings; the flags they map to have the same names (prefixed
    // with peer- for the peer block).
    const prefix = Object.hasOwn(TLS_BLOCKS, key) ? TLS_BLOCKS[key]! : undefined;
    if (prefix === undefined || v === null) return [[key, v]];
    if (typeof v !== 'object' || Array.isArray(v)) throw new FlagError(`config file ${path}: ${key}: cannot unmarshal ${goType(v)} into an object`);
    return Object.entries(v as Record<string, unknown>).map(([k, x]) => [TLS_KEYS.has(k) ? prefix + k : `${key}.${k}`, x]);
  });
  for (const [key, v] of entries) {
    if (!Object.hasOwn(flagSpecs, key) || key === 'config-file') {
      ignored.push(key);
      continue;
    }
    const name = key as FlagName;
    if (v === null) continue; // "key:" with no value keeps the default, as JSON null does in Go
    const bad = (want: string): FlagError =>
      new FlagError(`config file ${path}: ${key}: cannot unmarshal ${goType(v)} into ${want}`);
    const spec: FlagSpec = flagSpecs[name];
    switch (spec.kind) {
      case 'string':
      case 'urls':
        if (typeof v !== 'string') throw bad('a string');
        values[name] = v;
        break;
      case 'int':
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad('an integer');
        values[name] = String(v);
        break;
      case 'duration':
        // time.Duration in Go's JSON: an integer count of nanoseconds.
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad('a duration (integer nanoseconds)');
        values[name] = `${(v / 1e6).toFixed(6)}ms`;
        break;
      case 'bool':
        if (typeof v !== 'boolean') throw bad('a bool');
        values[name] = String(v);
        break;
      case 'list':
        // Go's []string: a YAML sequence of strings (etcd 3.4 refuses a plain string here).
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad('[]string');
        values[name] = v.join(',');
        break;
    }
  }
  return { values, ignored };
}
