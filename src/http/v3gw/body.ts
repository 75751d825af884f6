// Reading a unary request body ourselves (the gateway parses every content type the same way),
// with a cap: bytes past maxBytes are counted and dropped, never buffered.
import type { IncomingMessage } from 'node:http';

export type Body = { readonly kind: 'ok'; readonly bytes: Buffer } | { readonly kind: 'tooLarge'; readonly length: number };

/**
 * Buffers for large bodies, reused: a 1 MiB put arrives as ~1.4 MB of JSON, which lives only
 * until it is decoded (the decoded message shares no memory with it: every string and bytes field
 * is a copy, test/gateway/body-pool.test.ts), and allocating a fresh one per request is what
 * makes the garbage collector fall behind during a burst of large puts. Bounded in bytes, and
 * emptied after a quiet spell so that an idle server does not keep a burst's buffers.
 */
export class BodyPool {
  /** The buffers take() allocated: only those may come back (never a slice of Node's shared pool). */
  private readonly own = new WeakSet<ArrayBuffer>();
  private free: Buffer[] = [];
  private freeBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    /** Bodies at least this long are pooled; smaller ones come from Node's allocator as usual. */
    readonly minBytes = 256 * 1024,
    readonly maxFreeBytes = 16 * 1024 * 1024,
    readonly idleMs = 10_000,
  ) {}

  /** An uninitialized buffer of n bytes (from the pool when one is large enough). */
  take(n: number): Buffer {
    if (n < this.minBytes) return Buffer.allocUnsafe(n);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i]!.length;
      if (len >= n && (best < 0 || len < this.free[best]!.length)) best = i;
    }
    if (best < 0) {
      const b = Buffer.allocUnsafeSlow(n);
      this.own.add(b.buffer);
      return b;
    }
    const b = this.free.splice(best, 1)[0]!;
    this.freeBytes -= b.length;
    return b.subarray(0, n);
  }

  /** Gives a buffer from take() back. Its contents must no longer be referenced anywhere. */
  release(b: Buffer): void {
    if (!(b.buffer instanceof ArrayBuffer) || !this.own.has(b.buffer)) return;
    const whole = Buffer.from(b.buffer, 0, b.buffer.byteLength);
    if (this.free.some((f) => f.buffer === b.buffer) || this.freeBytes + whole.length > this.maxFreeBytes) return;
    this.free.push(whole);
    this.freeBytes += whole.length;
    this.idleTimer?.refresh();
    this.idleTimer ??= setTimeout(() => this.drain(), this.idleMs).unref();
  }

  /** Bytes held for reuse. */
  get heldBytes(): number {
    return this.freeBytes;
  }

  drain(): void {
    this.free = [];
    this.freeBytes = 0;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

export function readBody(req: IncomingMessage, maxBytes: number, pool?: BodyPool): Promise<Body> {
  return new Promise((resolve, reject) => {
    // With a Content-Length the body is copied once into a buffer of its size (no chunk list and
    // concat copy held at the same time); chunked bodies grow a buffer by doubling.
    const declared = Number(req.headers['content-length']);
    const size = Number.isSafeInteger(declared) && declared >= 0 && declared <= maxBytes ? declared : 0;
    let buf = pool !== undefined ? pool.take(size) : Buffer.allocUnsafe(size);
    let length = 0;
    // The listeners stay on the request, which lives until the answer is written: once settled
    // they must no longer reach the body, directly or through the promise they resolved.
    let settle: { resolve: (b: Body) => void; reject: (e: Error) => void } | undefined = { resolve, reject };
    req.on('data', (chunk: Buffer) => {
      const end = length + chunk.length;
      if (end <= maxBytes) {
        if (end > buf.length) {
          const grown = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(end, buf.length * 2, 16 * 1024)));
          buf.copy(grown, 0, 0, length);
          buf = grown;
        }
        chunk.copy(buf, length);
      }
      length = end;
    });
    req.on('end', () => {
      const bytes = buf.subarray(0, length);
      const s = settle;
      buf = EMPTY;
      settle = undefined;
      s?.resolve(length <= maxBytes ? { kind: 'ok', bytes } : { kind: 'tooLarge', length });
    });
    req.on('error', (err: Error) => {
      const s = settle;
      buf = EMPTY;
      settle = undefined;
      s?.reject(err);
    });
  });
}

const EMPTY = Buffer.alloc(0);
