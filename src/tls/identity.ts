// etcd's AllowedCN / AllowedHostname check of a verified client certificate (its transport's
// VerifyPeerCertificate): the leaf must carry that Common Name, or be valid for that hostname
// (its DNS or IP subject alternative names only, as Go's VerifyHostname). Node has no hook inside
// certificate verification, so callers apply it right after the handshake, before any request.
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';

export interface AllowedIdentity {
  /** '' = any Common Name. */
  readonly cn: string;
  /** '' = any hostname. */
  readonly hostname: string;
}

/** Why the connection's certificate is refused, or undefined to accept it (also when it presented none). */
export function identityRefusal(socket: TLSSocket, allowed: AllowedIdentity): string | undefined {
  if (allowed.cn === '' && allowed.hostname === '') return undefined;
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return undefined;
  if (allowed.cn !== '' && cert.subject?.CN === allowed.cn) return undefined;
  if (allowed.hostname !== '' && validFor(allowed.hostname, cert)) return undefined;
  return 'client certificate authentication failed';
}

/** Node's hostname check on the subject alternative names alone: Go's VerifyHostname (what etcd
 * 3.4.23 runs) never falls back to the Common Name, which Node's does when there is no DNS name. */
function validFor(hostname: string, cert: PeerCertificate): boolean {
  if (typeof cert.subjectaltname !== 'string' || cert.subjectaltname === '') return false;
  const sansOnly = { subjectaltname: cert.subjectaltname, subject: {} } as unknown as PeerCertificate;
  return checkServerIdentity(hostname, sansOnly) === undefined;
}
