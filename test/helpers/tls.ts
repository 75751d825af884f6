// Test certificates made by openssl in a temp dir: a CA, server certificates for 127.0.0.1 and
// localhost, client certificates whose Common Name is a user name, and the CA's CRL (openssl ca
// -revoke / -gencrl). Shared by the client-port and peer TLS tests and the upstream (gateway
// mode) TLS tests.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { etcdctl } from './procs.js';

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
  /** Adds the certificate to the CA's revoked list (write the CRL with crl()). */
  revoke(cert: IssuedCert): void;
  /** Writes the CA's current CRL (PEM) to `path` (default <dir>/<ca>.crl.pem) and returns the path. */
  crl(path?: string): string;
}

/** The SHA-256 fingerprint of the certificate a TLS endpoint serves to a new connection (not verified). */
export function servedFingerprint(port: number, clientCert?: IssuedCert): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
      ...(clientCert !== undefined ? { cert: readFileSync(clientCert.cert), key: readFileSync(clientCert.key) } : {}),
    }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

/** A certificate's SHA-256 fingerprint as Node prints it (what a TLS peer sees). */
export function fingerprintOf(certPath: string): string {
  return new X509Certificate(readFileSync(certPath)).fingerprint256;
}

/**
 * Replaces `to`'s certificate and/or key file with `from`'s, each by a rename (as rotation tools
 * do). Replacing only one of them leaves a pair that does not match, as in the middle of a rotation.
 */
export function rotateCert(from: IssuedCert, to: IssuedCert, parts: 'both' | 'cert' | 'key' = 'both'): void {
  const put = (src: string, dst: string): void => {
    copyFileSync(src, `${dst}.new`);
    renameSync(`${dst}.new`, dst);
  };
  if (parts !== 'key') put(from.cert, to.cert);
  if (parts !== 'cert') put(from.key, to.key);
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
  // openssl ca's minimal state for revoking and CRLs: an index of revoked certificates and a CRL number.
  const caConf = `${prefix}.cnf`;
  writeFileSync(join(dir, caConf), `[ca]\ndefault_ca = d\n[d]\ndatabase = ${prefix}.index\ncrlnumber = ${prefix}.crlnumber\n`
    + `default_md = sha256\ndefault_crl_days = 2\ncertificate = ${caPem}\nprivate_key = ${caKey}\n`);
  writeFileSync(join(dir, `${prefix}.index`), '');
  writeFileSync(join(dir, `${prefix}.crlnumber`), '01\n');
  return {
    dir,
    ca: join(dir, caPem),
    revoke: (cert) => openssl(['ca', '-config', caConf, '-revoke', cert.cert]),
    crl: (path = join(dir, `${prefix}.crl.pem`)) => {
      openssl(['ca', '-config', caConf, '-gencrl', '-out', path]);
      return path;
    },
    server: (name) => issue(name, name, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n'),
    client: (name, subjectCn) => issue(name, subjectCn, 'extendedKeyUsage=clientAuth\n'),
  };
}

/** etcdctl over TLS (trusting caFile) with a client certificate: its stdout, or its "Error:" line. */
export async function etcdctlTls(endpoint: string, caFile: string, cert: IssuedCert, args: string[]): Promise<string> {
  const r = await etcdctl(endpoint, [`--cacert=${caFile}`, `--cert=${cert.cert}`, `--key=${cert.key}`, '--dial-timeout=1s', '--command-timeout=2s', ...args], { timeoutMs: 15_000 });
  return r.code === 0 ? r.stdout : r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? `exit ${r.code}`;
}

/** GET url over TLS (trusting caFile), with this client certificate if any: the status, or 'refused' when the connection is cut. */
export async function tlsGet(url: string, caFile: string, cert?: IssuedCert): Promise<number | 'refused'> {
  const a = new Agent({ connect: { ca: readFileSync(caFile), ...(cert !== undefined ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } });
  try {
    const r = await request(url, { dispatcher: a });
    await r.body.dump();
    return r.statusCode;
  } catch {
    return 'refused';
  } finally {
    await a.close();
  }
}
