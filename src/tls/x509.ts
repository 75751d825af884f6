// The two pieces of X.509 that Node's crypto lacks, in DER: writing the self-signed certificate
// etcd's --auto-tls makes, and reading the revoked serial numbers out of a CRL (--client-crl-file).
// Node makes the key and the signature (node:crypto); this file only lays out and reads bytes.
// Not a general ASN.1 library: one fixed certificate template and one path through a CRL.
// (The npm alternatives, @peculiar/x509 or selfsigned, bring 20 packages and a global Reflect
// polyfill for these ~150 lines.) The tests check the output with openssl and X509Certificate.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';

// ---------------------------------------------------------------------------------------------
// DER writing

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);

/** A non-negative INTEGER from its big-endian magnitude (leading zeros dropped, a 0 added if the top bit is set). */
function uint(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(0x02, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const groups: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      groups.unshift((v & 0x7f) | (groups.length > 0 ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5), to the second. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

const bitString = (bytes: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), bytes);
const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes);

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), octetString(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and write eight 16-bit groups (an embedded IPv4 tail is rare enough to skip).
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const OID = {
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  basicConstraints: '2.5.29.19',
  subjectAltName: '2.5.29.17',
} as const;

export interface SelfSigned {
  /** PEM "CERTIFICATE". */
  readonly certPem: string;
  /** PEM "EC PRIVATE KEY" (SEC 1), as Go's x509.MarshalECPrivateKey writes it. */
  readonly keyPem: string;
}

/**
 * The certificate etcd 3.4's transport.SelfCert makes (checked against one it wrote): ECDSA P-521
 * signed with SHA-512, subject and issuer O=etcd, a random 128-bit serial, valid 365 days from
 * now, key usage digitalSignature + keyEncipherment (critical), extended key usage serverAuth,
 * basic constraints CA:FALSE (critical), and the hosts as IP or DNS subject alternative names.
 */
export function selfSignedCert(hosts: readonly string[], now = new Date()): SelfSigned {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const ips = hosts.filter((h) => isIP(h) !== 0);
  const dns = hosts.filter((h) => isIP(h) === 0);
  const name = seq(tlv(0x31, seq(oid(OID.organization), tlv(0x13, Buffer.from('etcd')))));
  const algorithm = seq(oid(OID.ecdsaWithSha512));
  const extensions = [
    // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101 in the top bits, 5 unused.
    extension(OID.keyUsage, true, bitString(Buffer.from([0xa0]), 5)),
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.basicConstraints, true, seq()),
    // Go writes the DNS names before the IPs: dNSName is [2] IA5String, iPAddress [7] OCTET STRING.
    ...(hosts.length > 0 ? [extension(OID.subjectAltName, false, seq(...dns.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))), ...ips.map((ip) => tlv(0x87, ipBytes(ip)))))] : []),
  ];
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const tbs = seq(
    tlv(0xa0, uint(Buffer.from([2]))), // version 3
    uint(randomBytes(16)),
    algorithm,
    name,
    seq(time(now), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...extensions)),
  );
  const signature = sign('sha512', tbs, privateKey); // DER ECDSA-Sig-Value, as X.509 wants it
  const der = seq(tbs, algorithm, bitString(signature));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n');
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: 'sec1', format: 'pem' }) as string,
  };
}

// ---------------------------------------------------------------------------------------------
// DER reading: a CRL's revoked serial numbers

export class DerError extends Error {}

interface Tlv {
  readonly tag: number;
  readonly body: Buffer;
  /** Offset just past this element in the buffer it was read from. */
  readonly end: number;
}

function readTlv(buf: Buffer, at: number): Tlv {
  const tag = buf[at];
  let n = buf[at + 1];
  if (tag === undefined || n === undefined) throw new DerError('truncated');
  let start = at + 2;
  if (n & 0x80) {
    const count = n & 0x7f;
    if (count === 0 || count > 4 || start + count > buf.length) throw new DerError('bad length');
    n = 0;
    for (let i = 0; i < count; i++) n = n * 256 + buf[start + i]!;
    start += count;
  }
  if (start + n > buf.length) throw new DerError('truncated');
  return { tag, body: buf.subarray(start, start + n), end: start + n };
}

function children(body: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < body.length;) {
    const t = readTlv(body, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** A serial number as compared here: lowercase hex of the magnitude, no leading zeros ("0" for zero). */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+(?=.)/, '');
}

/**
 * The serial numbers a CRL (PEM "X509 CRL" or DER) revokes, normalized. Like Go's x509.ParseCRL
 * as etcd 3.4 uses it, the CRL's signature and dates are not checked: the file is the operator's.
 */
export function crlRevokedSerials(data: Buffer): Set<string> {
  let der = data;
  const text = data.toString('latin1');
  const pem = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  if (pem !== null) der = Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  else if (text.includes('-----BEGIN')) throw new DerError('no "X509 CRL" PEM block');
  const list = readTlv(der, 0);
  if (list.tag !== 0x30) throw new DerError('not a CertificateList');
  const [tbs] = children(list.body);
  if (tbs?.tag !== 0x30) throw new DerError('no TBSCertList');
  // version? signature issuer thisUpdate nextUpdate? revokedCertificates? [0]extensions?
  const fields = children(tbs.body);
  let i = fields[0]?.tag === 0x02 ? 1 : 0;
  i += 3; // signature algorithm, issuer, thisUpdate
  if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) i++; // nextUpdate
  const serials = new Set<string>();
  const revoked = fields[i];
  if (revoked?.tag !== 0x30) return serials; // no revoked certificates (the field is left out when empty)
  for (const entry of children(revoked.body)) {
    const [serial] = children(entry.body);
    if (serial?.tag !== 0x02) throw new DerError('revoked entry without a serial number');
    serials.add(normalizeSerial(serial.body.toString('hex')));
  }
  return serials;
}
