// How a gRPC handler learns the verified client certificate's Common Name (--client-cert-auth),
// whichever way its connection reached grpc-js (rewrite-stream.ts):
// - handed over as it is (the TLSSocket itself): grpc-js's getAuthContext() has the certificate;
// - through the authority rewriter: Node's HTTP/2 reads a JS stream through its shim, not the
//   TLSSocket, so getAuthContext() is empty; the rewriter adds CLIENT_CN_HEADER to every header
//   block instead (and drops the client's own copies).
// A connection handed over as it is carries whatever a client put under CLIENT_CN_HEADER, unread
// by the listener. So the value the listener adds is sealed with a random key only this process
// knows, and a value without it counts for nothing: a client cannot name itself.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { CallContext } from '../backend/index.js';
import type { HeaderField } from '../util/hpack.js';

export const CLIENT_CN_HEADER = 'x-etcd-client-cert-cn';

/** 128 random bits, hex: never leaves the process (handlers never echo request metadata). */
const KEY = randomBytes(16).toString('hex');
const KEY_BYTES = Buffer.from(KEY, 'latin1');
const SEALED = /^([0-9a-f]{32}) (.*)$/s;

/** A certificate's Common Name, when it has a non-empty one. */
export function certCommonName(cert: PeerCertificate | undefined): string | undefined {
  const cn = cert?.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}

/** The field the rewriter adds to every header block of a TLS connection with a verified certificate. */
export function clientCnField(cn: string): HeaderField {
  return { name: CLIENT_CN_HEADER, value: `${KEY} ${encodeURIComponent(cn)}`, neverIndex: true };
}

/** The CN a CLIENT_CN_HEADER value carries, if the listener added it (see clientCnField). */
export function commonNameFromHeader(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = SEALED.exec(value);
  if (m === null || !timingSafeEqual(Buffer.from(m[1]!, 'latin1'), KEY_BYTES)) return undefined;
  try {
    return decodeURIComponent(m[2]!);
  } catch {
    return undefined;
  }
}

/** What of a grpc-js call this needs (every server call type has both). */
export interface CallAuthSource {
  readonly metadata: { get(key: string): unknown[] };
  getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined };
}

/**
 * The verified client certificate's CN of a gRPC call, if any. getAuthContext() reports a
 * certificate only on a TLS connection that verified it (socket.authorized), which the listener
 * asks for with --client-cert-auth alone: so, as in etcd 3.4, the CN counts only with that flag.
 */
export function callCommonName(call: CallAuthSource): string | undefined {
  return certCommonName(call.getAuthContext().sslPeerCertificate) ?? commonNameFromHeader(call.metadata.get(CLIENT_CN_HEADER)[0]);
}

/**
 * Who a call comes from: the auth token in metadata `token`, else `authorization` (as etcd reads
 * them), and the Common Name of a verified client certificate. Both are read here, at once (under
 * a microsecond): the context must not keep a reference to the call (a lazy getter closing over
 * it measurably slowed range1, presumably by keeping call objects alive for longer).
 */
export function callContext(call: CallAuthSource): CallContext {
  const md = call.metadata;
  const v = md.get('token')[0] ?? md.get('authorization')[0];
  return { token: v === undefined ? undefined : String(v), commonName: callCommonName(call) };
}
