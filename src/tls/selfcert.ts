// --auto-tls / --peer-auto-tls: etcd's transport.SelfCert. The certificate and key are made once
// under <data-dir>/fixtures/client (or peer) and reused as they are on every later start, as etcd
// does (whatever hosts the URLs name by then).
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selfSignedCert } from './x509.js';

export interface SelfCertFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Made now (false: reused from an earlier start). */
  readonly created: boolean;
}

/** The files a self-signed certificate for `hosts` lives in under `dir`: cert.pem and key.pem. */
export function selfCertPaths(dir: string): { certFile: string; keyFile: string } {
  return { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
}

/** Makes (or finds) the self-signed certificate in `dir` (mode 0700; the key 0600, as etcd). */
export function ensureSelfCert(dir: string, hosts: readonly string[]): SelfCertFiles {
  const { certFile, keyFile } = selfCertPaths(dir);
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { certPem, keyPem } = selfSignedCert([...new Set(hosts)]);
  // Written aside and renamed: a crash half-way must not leave a torn file that later starts reuse.
  writeFileSync(`${keyFile}.tmp`, keyPem, { mode: 0o600 });
  writeFileSync(`${certFile}.tmp`, certPem, { mode: 0o644 });
  renameSync(`${keyFile}.tmp`, keyFile);
  renameSync(`${certFile}.tmp`, certFile);
  return { certFile, keyFile, created: true };
}
