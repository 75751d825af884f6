// src/tls/x509.ts on its own: the self-signed certificate parses and verifies with Node and
// openssl for IPv4, IPv6 and DNS hosts; CRLs written by openssl (PEM and DER, empty or not) give
// the revoked serials openssl prints; anything else is an error, never an empty list.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { crlRevokedSerials, DerError, selfSignedCert } from '../../src/tls/x509.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';
import { hasOpenssl, makeCa, OPENSSL_BIN } from '../helpers/tls.js';

const skip = !hasOpenssl() && 'needs /usr/bin/openssl';
let dir = '';
before(async () => {
  dir = await makeTempDir('x509-');
});
after(async () => {
  await removeTempDir(dir);
});

test('the self-signed certificate verifies and names its hosts (IPv4, IPv6, DNS)', { skip }, () => {
  const { certPem, keyPem } = selfSignedCert(['10.1.2.3', '::1', 'fe80::1:2', 'etcd.example'], new Date('2049-06-01T00:00:00Z'));
  const x = new X509Certificate(certPem);
  assert.ok(x.verify(x.publicKey), 'self-signed');
  assert.ok(x.checkPrivateKey(createPrivateKey(keyPem)));
  assert.match(keyPem, /^-----BEGIN EC PRIVATE KEY-----/);
  assert.equal(x.checkIP('10.1.2.3'), '10.1.2.3');
  assert.equal(x.checkIP('fe80::1:2'), 'fe80::1:2');
  assert.equal(x.checkIP('::1'), '::1');
  assert.equal(x.checkHost('etcd.example'), 'etcd.example');
  assert.equal(x.ca, false);
  // Valid into 2050: the end date switches to GeneralizedTime (RFC 5280), which openssl reads.
  assert.equal(new Date(x.validTo).getUTCFullYear(), 2050);
  const file = join(dir, 'self.pem');
  writeFileSync(file, certPem);
  assert.equal(execFileSync(OPENSSL_BIN, ['verify', '-attime', String(Date.parse('2049-06-02T00:00:00Z') / 1000), '-CAfile', file, file]).toString(), `${file}: OK\n`);
});

test('CRL serials as openssl prints them, from PEM and DER; an empty CRL; garbage refused', { skip }, () => {
  const ca = makeCa(dir, 'crl-ca');
  const empty = ca.crl(join(dir, 'empty.crl'));
  assert.deepEqual(crlRevokedSerials(readFileSync(empty)), new Set());
  const certs = [ca.client('a', 'a'), ca.client('b', 'b'), ca.client('c', 'c')];
  ca.revoke(certs[0]!);
  ca.revoke(certs[2]!);
  const pem = ca.crl(join(dir, 'two.crl'));
  const der = join(dir, 'two.der');
  execFileSync(OPENSSL_BIN, ['crl', '-in', pem, '-outform', 'DER', '-out', der]);
  const serialOf = (f: string): string => new X509Certificate(readFileSync(f)).serialNumber.toLowerCase().replace(/^0+/, '');
  const want = new Set([serialOf(certs[0]!.cert), serialOf(certs[2]!.cert)]);
  assert.deepEqual(crlRevokedSerials(readFileSync(pem)), want);
  assert.deepEqual(crlRevokedSerials(readFileSync(der)), want);
  assert.throws(() => crlRevokedSerials(Buffer.from('not a crl')), DerError);
  assert.throws(() => crlRevokedSerials(readFileSync(certs[1]!.cert)), DerError, 'a certificate is not a CRL');
  assert.throws(() => crlRevokedSerials(readFileSync(der).subarray(0, 40)), DerError, 'truncated');
});
