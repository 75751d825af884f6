// Auth tokens, as etcd's --auth-token providers: simple (random, held in memory, TTL renewed on
// use, lost on restart) and jwt (signed claims {username, revision, exp}; verify across restarts
// and members since nothing is held). Time comes from the injected Clock.
import { createPrivateKey, createPublicKey, randomInt, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Clock } from '../../util/clock.js';
import type { AuthInfo } from './store.js';

export interface TokenProvider {
  /** A new token for `username`, authenticated at auth `revision` by the entry applied at `index`. */
  assign(username: string, revision: number, simplePrefix: string, index: number): string;
  /** The caller a token stands for, or undefined when it is unknown, forged or expired. */
  info(token: string, currentRevision: number): AuthInfo | undefined;
  /** Password changed or user deleted: the user's tokens stop working (simple tokens only). */
  invalidateUser(username: string): void;
  /** Auth disabled: every token issued so far stops working. */
  disable(): void;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** etcd's simple token prefix: 16 random letters (the apply appends "." + the raft index). */
export function simpleTokenPrefix(): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += LETTERS[randomInt(LETTERS.length)];
  return s;
}

const SWEEP_EVERY_MS = 10_000;

export class SimpleTokens implements TokenProvider {
  private readonly tokens = new Map<string, { username: string; expiresMs: number }>();
  private lastSweepMs = 0;

  constructor(private readonly clock: Clock, private readonly ttlMs: number) {}

  assign(username: string, _revision: number, simplePrefix: string, index: number): string {
    const now = this.clock.nowMs();
    if (now - this.lastSweepMs > SWEEP_EVERY_MS) {
      this.lastSweepMs = now;
      for (const [t, e] of this.tokens) if (e.expiresMs <= now) this.tokens.delete(t);
    }
    const token = `${simplePrefix}.${index}`;
    this.tokens.set(token, { username, expiresMs: now + this.ttlMs });
    return token;
  }

  info(token: string, currentRevision: number): AuthInfo | undefined {
    const e = this.tokens.get(token);
    const now = this.clock.nowMs();
    if (e === undefined) return undefined;
    if (e.expiresMs <= now) {
      this.tokens.delete(token);
      return undefined;
    }
    e.expiresMs = now + this.ttlMs;
    // A simple token is as current as the store: etcd checks it at the store's revision.
    return { username: e.username, revision: currentRevision };
  }

  invalidateUser(username: string): void {
    for (const [t, e] of this.tokens) if (e.username === username) this.tokens.delete(t);
  }

  disable(): void {
    this.tokens.clear();
  }
}

export interface JwtOptions {
  readonly signMethod: string;
  readonly publicKeyPath: string;
  readonly privateKeyPath: string;
  readonly ttlMs: number;
}

/** JWS algorithm -> node:crypto digest and signature encoding. */
const ALGORITHMS: Readonly<Record<string, { digest: string; pss?: boolean; ecdsa?: boolean }>> = {
  RS256: { digest: 'sha256' }, RS384: { digest: 'sha384' }, RS512: { digest: 'sha512' },
  PS256: { digest: 'sha256', pss: true }, PS384: { digest: 'sha384', pss: true }, PS512: { digest: 'sha512', pss: true },
  ES256: { digest: 'sha256', ecdsa: true }, ES384: { digest: 'sha384', ecdsa: true }, ES512: { digest: 'sha512', ecdsa: true },
};

export const JWT_SIGN_METHODS = Object.keys(ALGORITHMS);

function readKey(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`--auth-token jwt: cannot read ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** Verified JWTs remembered, at most this many (then all forgotten at once). */
const JWT_CACHE_MAX = 10_000;

export class JwtTokens implements TokenProvider {
  private readonly alg: { digest: string; pss?: boolean; ecdsa?: boolean };
  private readonly publicKey: KeyObject;
  private readonly privateKey: KeyObject | undefined;
  /**
   * Tokens whose signature verified, with their claims. A token's signature and claims never
   * change and the key is fixed for the process, so only the expiry needs checking again: this
   * saves a public-key verify (~50-100 µs for RS256) on every request. Failures are not kept.
   */
  private readonly verified = new Map<string, { info: AuthInfo; expMs: number }>();

  constructor(private readonly clock: Clock, private readonly opts: JwtOptions) {
    const alg = ALGORITHMS[opts.signMethod];
    if (alg === undefined) throw new Error(`unsupported JWT sign method ${opts.signMethod}`);
    this.alg = alg;
    this.publicKey = createPublicKey(readKey('pub-key', opts.publicKeyPath));
    // etcd allows a verify-only member (no private key): it can check tokens but not issue them.
    this.privateKey = opts.privateKeyPath === '' ? undefined : createPrivateKey(readKey('priv-key', opts.privateKeyPath));
  }

  private keyOptions<K extends KeyObject>(key: K): { key: K; padding?: number; dsaEncoding?: 'ieee-p1363' } {
    if (this.alg.pss === true) return { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */ };
    if (this.alg.ecdsa === true) return { key, dsaEncoding: 'ieee-p1363' };
    return { key };
  }

  assign(username: string, revision: number): string {
    if (this.privateKey === undefined) throw new Error('jwt: no private key to sign tokens with');
    const header = b64url(JSON.stringify({ alg: this.opts.signMethod, typ: 'JWT' }));
    const exp = Math.floor((this.clock.nowMs() + this.opts.ttlMs) / 1000);
    const claims = b64url(JSON.stringify({ username, revision, exp }));
    const sig = sign(this.alg.digest, Buffer.from(`${header}.${claims}`), this.keyOptions(this.privateKey));
    return `${header}.${claims}.${b64url(sig)}`;
  }

  info(token: string): AuthInfo | undefined {
    const hit = this.verified.get(token);
    if (hit !== undefined) {
      if (hit.expMs > this.clock.nowMs()) return hit.info;
      this.verified.delete(token);
      return undefined;
    }
    const claims = this.verify(token);
    if (claims === undefined || claims.expMs <= this.clock.nowMs()) return undefined;
    if (this.verified.size >= JWT_CACHE_MAX) this.verified.clear();
    this.verified.set(token, claims);
    return claims.info;
  }

  /** The claims of a token signed with our key and algorithm, expired or not. */
  private verify(token: string): { info: AuthInfo; expMs: number } | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header, claims, sig] = parts as [string, string, string];
    try {
      const h = JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg?: unknown };
      if (h.alg !== this.opts.signMethod) return undefined;
      if (!verify(this.alg.digest, Buffer.from(`${header}.${claims}`), this.keyOptions(this.publicKey), Buffer.from(sig, 'base64url'))) return undefined;
      const c = JSON.parse(Buffer.from(claims, 'base64url').toString()) as { username?: unknown; revision?: unknown; exp?: unknown };
      if (typeof c.username !== 'string' || typeof c.revision !== 'number' || typeof c.exp !== 'number') return undefined;
      return { info: { username: c.username, revision: c.revision }, expMs: c.exp * 1000 };
    } catch {
      return undefined;
    }
  }

  invalidateUser(): void {
    // Nothing to drop: a changed password or deleted user shows as a newer auth revision, which
    // the token (cached or not) carries unchanged.
  }

  disable(): void {
    // While auth is off every token is refused before it is looked at; the cache only frees memory.
    this.verified.clear();
  }
}
