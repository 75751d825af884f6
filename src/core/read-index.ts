// Linearizable reads of a cluster member: readers wait for a ReadIndex, and one request serves
// every reader that joined before it was sent (etcd's linearizableReadLoop batches the same way).
// The request goes out after the current event-loop turn (`defer`, setImmediate in the server):
// the ranges of a client's burst arrive from one socket read, each from its own HTTP/2 stream
// callback, and sent at the first of them the request would leave the other readers of that
// burst to the next round trip. What the read index then waits for (this member's apply) is the
// server's business: answered() hands the index and the readers over.
import type { ReadState } from './raft/index.js';

interface Reader {
  resolve(): void;
  reject(e: Error): void;
}

export interface ReadIndexOptions {
  /** Asks raft for a read point under ctx (RaftNode.readIndex). */
  send(ctx: bigint): void;
  /** Runs fn once the current event-loop turn's I/O is read. */
  defer(fn: () => void): void;
  nowMs(): number;
  /** A request unanswered this long is asked again under a new ctx (lost on the way). */
  retryMs: number;
  /** Readers waiting this long fail with timeoutError(). */
  timeoutMs: number;
  timeoutError(): Error;
  /** What a reader arriving after close() gets. */
  closedError(): Error;
}

export class ReadIndexBatcher {
  /** Readers for the next request. */
  private waiting: Reader[] = [];
  private inflight: { ctx: bigint; readers: Reader[]; sentMs: number; firstMs: number } | undefined;
  private scheduled = false;
  private ctx = 0n;
  private closed = false;
  /** Requests sent (retries included): tests check the batching with it. */
  sent = 0;

  constructor(private readonly opts: ReadIndexOptions) {}

  /** Resolves once a ReadIndex issued after this call is answered and released (see answered()). */
  wait(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(this.opts.closedError());
        return;
      }
      this.waiting.push({ resolve, reject });
      if (this.inflight !== undefined || this.scheduled) return;
      this.scheduled = true;
      this.opts.defer(() => {
        this.scheduled = false;
        if (this.inflight === undefined) this.sendNext();
      });
    });
  }

  /**
   * The read states raft produced: when one answers the request in flight, its read index and a
   * release() for its readers (the caller runs it once it has applied that index); the next
   * request, for the readers that came meanwhile, is sent at once.
   */
  answered(rs: readonly ReadState[]): { index: number; release(): void } | undefined {
    const r = this.inflight;
    if (r === undefined) return undefined;
    const hit = rs.find((x) => x.ctx === r.ctx);
    if (hit === undefined) return undefined;
    this.inflight = undefined;
    this.sendNext();
    return {
      index: hit.index,
      release: () => {
        for (const w of r.readers) w.resolve();
      },
    };
  }

  /** Called periodically: times out the request in flight, or asks again when it seems lost. */
  sweep(): void {
    const r = this.inflight;
    if (r === undefined) return;
    const now = this.opts.nowMs();
    if (now - r.firstMs > this.opts.timeoutMs) {
      this.inflight = undefined;
      for (const w of r.readers) w.reject(this.opts.timeoutError());
      this.sendNext();
    } else if (now - r.sentMs > this.opts.retryMs) {
      r.ctx = ++this.ctx;
      r.sentMs = now;
      this.sent++;
      this.opts.send(r.ctx);
    }
  }

  /** Fails every reader, waiting or in flight, with closedError(); nothing is sent any more. */
  close(): void {
    this.closed = true;
    const readers = [...this.waiting, ...(this.inflight?.readers ?? [])];
    this.waiting = [];
    this.inflight = undefined;
    for (const r of readers) r.reject(this.opts.closedError());
  }

  private sendNext(): void {
    if (this.waiting.length === 0 || this.closed) return;
    const now = this.opts.nowMs();
    this.inflight = { ctx: ++this.ctx, readers: this.waiting, sentMs: now, firstMs: now };
    this.waiting = [];
    this.sent++;
    this.opts.send(this.inflight.ctx);
  }
}
