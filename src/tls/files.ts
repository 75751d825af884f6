// A TLS endpoint's files, re-read when they change on disk. etcd 3.4 reads the certificate and
// key on every handshake (tls.Config.GetCertificate / GetClientCertificate) and the CRL on every
// connection, so rotating the files needs no restart. Here the files are stat()ed at most once a
// second, when a connection arrives (or is dialed), and a change builds a new set of options that
// listeners apply with setSecureContext and dialers with a new connector. A change that does not
// load (a key that does not match the new certificate yet, a half-written file) keeps the last
// good certificate, is logged, and is tried again when the files change again.
// The CA file is re-read too (etcd 3.4 reads it only at start); the CRL keeps its own state, so a
// CRL update does not rebuild the certificate context.
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { crlRevokedSerials, normalizeSerial } from './x509.js';

export interface TlsFilePaths {
  readonly certFile: string;
  readonly keyFile: string;
  /** '' = none. */
  readonly trustedCaFile: string;
  /** '' = no revocation check. */
  readonly crlFile: string;
}

export interface TlsSnapshot {
  /** Changes whenever the options do. */
  readonly version: number;
  /** cert, key, ca (as read) and the fixed options (ciphers, minVersion). */
  readonly options: SecureContextOptions;
}

export interface TlsEvents {
  /** A rotated certificate (or CA) was loaded. */
  onReload?(files: string): void;
  /** Something could not be loaded: the last good state stays. */
  onError?(what: string, err: unknown): void;
}

const CHECK_INTERVAL_MS = 1000;

function signature(path: string): string {
  if (path === '') return '';
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

export class TlsFiles {
  private snap: TlsSnapshot;
  /** The stat() signature of the files the current options came from, and of the last set that did not load. */
  private sig: string;
  private failedSig = '';
  private checkedAt: number;
  private crlSig = '';
  private revoked: Set<string> | Error = new Set();

  /** Reads the files now: an unreadable certificate or key (or a mismatched pair) throws, failing the start. */
  constructor(
    readonly paths: TlsFilePaths,
    private readonly fixed: SecureContextOptions,
    private readonly events: TlsEvents = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sig = this.certSignature();
    this.snap = { version: 1, options: this.load() };
    this.checkedAt = this.now();
    this.loadCrl();
  }

  /** The current options, after a check of the files if the last one is a second old. */
  current(): TlsSnapshot {
    const t = this.now();
    if (t - this.checkedAt >= CHECK_INTERVAL_MS) {
      this.checkedAt = t;
      this.refresh();
    }
    return this.snap;
  }

  /**
   * etcd's CRL check of an accepted connection: the reason to refuse it when a certificate it
   * presented (the leaf or one above it) has a serial number the CRL lists, or when the CRL cannot
   * be read; undefined to accept it. Call after current() so the CRL is as fresh as the certificate.
   */
  revocation(socket: TLSSocket): string | undefined {
    if (this.paths.crlFile === '') return undefined;
    const chain = presentedSerials(socket);
    if (chain.length === 0) return undefined;
    if (this.revoked instanceof Error) return `cannot read CRL ${this.paths.crlFile}: ${this.revoked.message}`;
    const hit = chain.find((s) => (this.revoked as Set<string>).has(s));
    return hit === undefined ? undefined : `transport: certificate serial ${hit} revoked`;
  }

  private certSignature(): string {
    return [this.paths.certFile, this.paths.keyFile, this.paths.trustedCaFile].map(signature).join('|');
  }

  private load(): SecureContextOptions {
    const { certFile, keyFile, trustedCaFile } = this.paths;
    const options: SecureContextOptions = {
      ...this.fixed,
      cert: readFileSync(certFile),
      key: readFileSync(keyFile),
      ...(trustedCaFile !== '' ? { ca: readFileSync(trustedCaFile) } : {}),
    };
    createSecureContext(options); // throws on a bad pair before anything uses it
    return options;
  }

  private refresh(): void {
    const sig = this.certSignature();
    // A set of files that failed to load is tried again only once one of them changes again.
    if (sig !== this.sig && sig !== this.failedSig) {
      try {
        const options = this.load();
        this.sig = sig;
        this.snap = { version: this.snap.version + 1, options };
        this.events.onReload?.([this.paths.certFile, this.paths.keyFile, this.paths.trustedCaFile].filter((p) => p !== '').join(', '));
      } catch (err) {
        this.failedSig = sig;
        this.events.onError?.('reloading the TLS certificate (the previous one stays in use)', err);
      }
    }
    this.loadCrl();
  }

  private loadCrl(): void {
    if (this.paths.crlFile === '') return;
    const sig = signature(this.paths.crlFile);
    if (sig === this.crlSig) return;
    this.crlSig = sig;
    try {
      this.revoked = crlRevokedSerials(readFileSync(this.paths.crlFile));
    } catch (err) {
      // As etcd: while the CRL cannot be read, connections presenting a certificate are refused.
      this.revoked = err instanceof Error ? err : new Error(String(err));
      this.events.onError?.(`reading the CRL ${this.paths.crlFile} (connections with a certificate are refused until it loads)`, err);
    }
  }
}

/** The serial numbers of the certificates the other side presented: the leaf, then its issuers. */
function presentedSerials(socket: TLSSocket): string[] {
  const out: string[] = [];
  let c = socket.getPeerCertificate(true) as ReturnType<TLSSocket['getPeerCertificate']> & { issuerCertificate?: ReturnType<TLSSocket['getPeerCertificate']> };
  const seen = new Set<object>();
  while (c !== undefined && c !== null && typeof c.serialNumber === 'string' && !seen.has(c)) {
    seen.add(c);
    out.push(normalizeSerial(c.serialNumber));
    c = c.issuerCertificate as typeof c;
  }
  return out;
}
