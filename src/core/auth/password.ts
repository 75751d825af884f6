// Salted slow password hashes (scrypt from node:crypto; etcd uses bcrypt). Hashing and checking run
// before a request is proposed, never inside apply: apply only stores the hash it is given, so
// it stays deterministic and no password reaches the log.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** N=2^14, r=8, p=1: tens of ms per check, like etcd's bcrypt cost 10. */
const PARAMS = { N: 16384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const PREFIX = 'scrypt';

function derive(password: string, salt: Buffer, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { ...o, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** "scrypt$N$r$p$<salt b64>$<key b64>", self-describing so parameters can change later. */
export async function hashPassword(password: string): Promise<Buffer> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, PARAMS);
  return Buffer.from([PREFIX, PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$'));
}

export async function checkPassword(password: string, hash: Uint8Array): Promise<boolean> {
  const parts = Buffer.from(hash).toString().split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const want = Buffer.from(parts[5]!, 'base64');
  const got = await derive(password, Buffer.from(parts[4]!, 'base64'), { N, r, p });
  return got.length === want.length && timingSafeEqual(got, want);
}
