// --cipher-suites: etcd 3.4 takes Go's names for the TLS 1.0–1.2 suites (its pkg/tlsutil table);
// Node's `ciphers` option takes OpenSSL's. TLS 1.3 suites are not configurable in etcd 3.4: Go
// always offers its three TLS 1.3 suites whatever the list says (checked against etcd 3.4.23:
// with --cipher-suites set, a TLS 1.3 client still gets TLS 1.3 with any of them). Node would
// instead turn TLS 1.3 off for a list without TLS 1.3 names, so Go's three are appended.
import { getCiphers } from 'node:tls';

/** Go/IANA name (as etcd 3.4's tlsutil spells it) -> OpenSSL name. */
export const GO_TO_OPENSSL: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_RC4_128_SHA: 'RC4-SHA',
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: 'ECDHE-ECDSA-RC4-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: 'ECDHE-RSA-RC4-SHA',
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};

/** The TLS 1.3 suites Go offers (not configurable in Go, so in etcd 3.4 neither). */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** Go's http2.ConfigureServer refuses a suite list without one of these (RFC 7540 9.2.2). */
const H2_REQUIRED = ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'];

export class CipherSuiteError extends Error {}

/**
 * "A,B,C" (Go names) -> Node's `ciphers` string, or undefined for '' (Node's defaults). Unknown
 * names are refused with etcd 3.4's words; RC4 and 3DES suites, which etcd's Go still has but
 * Node 20's OpenSSL does not, are refused too rather than silently dropped.
 */
export function parseCipherSuites(list: string): { readonly names: readonly string[]; readonly ciphers: string } | undefined {
  if (list.trim() === '') return undefined;
  const names = list.split(',').map((s) => s.trim());
  const available = new Set(getCiphers());
  const mapped = names.map((name) => {
    const openssl = Object.hasOwn(GO_TO_OPENSSL, name) ? GO_TO_OPENSSL[name]! : undefined;
    if (openssl === undefined) throw new CipherSuiteError(`unexpected TLS cipher suite "${name}"`);
    if (!available.has(openssl.toLowerCase())) throw new CipherSuiteError(`TLS cipher suite "${name}" is not supported by this server's TLS library (OpenSSL ${process.versions.openssl})`);
    return openssl;
  });
  return { names, ciphers: [...mapped, ...TLS13_SUITES].join(':') };
}

/** The check an https client listener makes at start, as Go's HTTP/2 server does (its words). */
export function checkHttp2Suites(names: readonly string[]): void {
  if (!names.some((n) => H2_REQUIRED.includes(n))) {
    throw new CipherSuiteError(`http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of ${H2_REQUIRED.join(' or ')})`);
  }
}
