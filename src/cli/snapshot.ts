// `etcd-gateway snapshot restore <file> --data-dir <dir> [--initial-cluster-token T]`: turns a
// file written by `etcdctl snapshot save` against this server (our LMDB copy + a SHA-256 trailer)
// into a new data directory of a NEW cluster: the data dir records the cluster token (given, or a
// fresh random one), from which the member and cluster IDs derive, as etcd's restore does.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlagError } from '../config/index.js';
import { META_CLUSTER_TOKEN } from '../core/server.js';
import { LmdbStorage } from '../core/storage/lmdb.js';

const DIGEST_BYTES = 32;

export async function snapshotCommand(args: readonly string[]): Promise<string> {
  const [verb, file, ...rest] = args;
  if (verb !== 'restore' || file === undefined) throw new FlagError('usage: etcd-gateway snapshot restore <file> --data-dir <dir> [--initial-cluster-token <token>]');
  let dataDir: string | undefined;
  let token: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a.startsWith('--data-dir=')) dataDir = a.slice('--data-dir='.length);
    else if (a === '--data-dir') dataDir = rest[++i];
    else if (a.startsWith('--initial-cluster-token=')) token = a.slice('--initial-cluster-token='.length);
    else if (a === '--initial-cluster-token') token = rest[++i];
    else throw new FlagError(`unknown flag for snapshot restore: ${a}`);
  }
  if (dataDir === undefined || dataDir === '') throw new FlagError('snapshot restore needs --data-dir');
  if (token === '') throw new FlagError('--initial-cluster-token must not be empty');
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
  const clusterToken = token ?? `restored-${randomBytes(8).toString('hex')}`;
  const storage = new LmdbStorage(dataDir);
  storage.stage({ t: 'meta', name: META_CLUSTER_TOKEN, value: Buffer.from(clusterToken) });
  await storage.commit();
  await storage.close();
  return `restored ${body.length} bytes into ${dataDir} (cluster token ${clusterToken})`;
}
