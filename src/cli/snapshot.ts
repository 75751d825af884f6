// `etcd-gateway snapshot restore <file> --data-dir <dir>`: turns a file written by
// `etcdctl snapshot save` against this server (our LMDB copy + a SHA-256 trailer) into a new
// data directory.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlagError } from '../config/index.js';

const DIGEST_BYTES = 32;

export function snapshotCommand(args: readonly string[]): string {
  const [verb, file, ...rest] = args;
  if (verb !== 'restore' || file === undefined) throw new FlagError('usage: etcd-gateway snapshot restore <file> --data-dir <dir>');
  let dataDir: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a.startsWith('--data-dir=')) dataDir = a.slice('--data-dir='.length);
    else if (a === '--data-dir') dataDir = rest[++i];
    else throw new FlagError(`unknown flag for snapshot restore: ${a}`);
  }
  if (dataDir === undefined || dataDir === '') throw new FlagError('snapshot restore needs --data-dir');
  if (existsSync(dataDir)) throw new FlagError(`data-dir "${dataDir}" exists; restore only creates a new one`);
  const data = readFileSync(file);
  if (data.length < DIGEST_BYTES || (data.length - DIGEST_BYTES) % 512 !== 0) {
    throw new FlagError(`${file}: not a snapshot of this server (size ${data.length})`);
  }
  const body = data.subarray(0, data.length - DIGEST_BYTES);
  const want = data.subarray(data.length - DIGEST_BYTES);
  if (!createHash('sha256').update(body).digest().equals(want)) throw new FlagError(`${file}: SHA-256 checksum mismatch`);
  const dir = join(dataDir, 'member', 'snap');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'db'), body);
  return `restored ${body.length} bytes into ${dataDir}`;
}
