// Test certificates made by openssl in a temp dir: a CA, server certificates for 127.0.0.1 and
// localhost, client certificates whose Common Name is a user name. Shared by the client-port TLS
// tests and the upstream (gateway mode) TLS tests.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const OPENSSL_BIN = '/usr/bin/openssl';

export function hasOpenssl(): boolean {
  return existsSync(OPENSSL_BIN);
}

/** Paths of one issued certificate and its key. */
export interface IssuedCert {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (what --trusted-ca-file / --cacert take). */
  readonly ca: string;
  /** A certificate for 127.0.0.1 and localhost, usable by a server and as a client. */
  server(name: string): IssuedCert;
  /** A client-only certificate with this Common Name. */
  client(name: string, cn: string): IssuedCert;
}

/** Makes a CA named `cn` in `dir` (which must exist). RSA 2048, valid two days. */
export function makeCa(dir: string, cn = 'test-ca'): TestCa {
  const openssl = (args: string[]): void => {
    execFileSync(OPENSSL_BIN, args, { cwd: dir, stdio: 'ignore' });
  };
  const prefix = cn.replace(/\W/g, '_');
  const caKey = `${prefix}.key`;
  const caPem = `${prefix}.pem`;
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caPem, '-days', '2', '-subj', `/CN=${cn}`]);
  const issue = (name: string, subjectCn: string, ext: string): IssuedCert => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${subjectCn}`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', caPem, '-CAkey', caKey, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  };
  return {
    dir,
    ca: join(dir, caPem),
    server: (name) => issue(name, name, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n'),
    client: (name, subjectCn) => issue(name, subjectCn, 'extendedKeyUsage=clientAuth\n'),
  };
}
