// The stream channel of the peer transport, as etcd's GET /raft/stream/message/<dialer id>: each
// member dials one long-lived GET to every peer, and the dialled peer writes the raft messages it
// has for the dialler into that response, as length-prefixed frames (codec.ts), for as long as
// the connection lives. So messages from A to B travel on the connection B opened, as in etcd.
//
// Why a GET whose response is the stream (etcd's direction) and not a never-ending POST body:
// node:http's ServerResponse and undici's response body are both first-class long-lived streams
// with backpressure, while undici's HTTP/1.1 client has no defined behaviour for a response that
// arrives before its request body ended; the dialled side knows the stream is up exactly when a
// request is attached; and HTTP proxies (the partition tests' one included) pass a streamed
// response through as it comes.
//
// Liveness: an idle writer sends an empty frame (LINK_HEARTBEAT) every LINK_HEARTBEAT_MS; the
// reader gives the stream up when nothing at all arrived for STREAM_READ_TIMEOUT_MS (undici's
// bodyTimeout), and the writer when what it wrote has not drained for STREAM_STALL_MS (a stopped
// peer). Either way the dialler dials again with backoff and, meanwhile, messages go by the
// pipeline (transport.ts). Messages written into a stream that then breaks are lost; raft
// retransmits what matters (an append whose response never comes is resent after a rejection or
// a heartbeat response shows the follower behind).
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Message } from '../raft/index.js';
import { FrameDecoder, LINK_HEARTBEAT } from './codec.js';

export const STREAM_PATH = '/raft/stream/message/';
export const RAFT_TO_HEADER = 'x-raft-to';
export const LINK_HEARTBEAT_MS = 1_000;
export const STREAM_READ_TIMEOUT_MS = 5_000;
const STREAM_STALL_MS = 5_000;
/** Written and not yet sent beyond this: the peer does not read; the stream is dropped. */
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
const DIAL_BACKOFF_MIN_MS = 50;
const DIAL_BACKOFF_MAX_MS = 1_000;

/** The dialled side: raft messages for the dialler go into the response. */
export class StreamWriter {
  private lastWrite = Date.now();
  private stalledSince: number | undefined;
  private closed = false;

  constructor(private readonly res: ServerResponse, private readonly onClose: (w: StreamWriter, failed: boolean) => void) {
    res.on('close', () => this.close());
    res.on('drain', () => { this.stalledSince = undefined; });
    // The first bytes tell the dialler (and any proxy between) that the stream is up.
    this.put(LINK_HEARTBEAT);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Queues a frame; false when the stream is closed (the caller uses the pipeline instead). */
  write(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.res.writableLength > MAX_BUFFERED_BYTES) {
      this.close(true);
      return false;
    }
    this.put(frame);
    return true;
  }

  private put(frame: Buffer): void {
    const now = Date.now();
    this.lastWrite = now;
    if (!this.res.write(frame)) this.stalledSince ??= now;
  }

  /** Called every so often: a link heartbeat when idle, and the end of a stalled stream. */
  tick(now: number): void {
    if (this.closed) return;
    if (this.stalledSince !== undefined && now - this.stalledSince > STREAM_STALL_MS) this.close(true);
    else if (now - this.lastWrite >= LINK_HEARTBEAT_MS) this.put(LINK_HEARTBEAT);
  }

  /** failed: given up because the peer did not read (not a close by either side). */
  close(failed = false): void {
    if (this.closed) return;
    this.closed = true;
    this.res.destroy();
    this.onClose(this, failed);
  }
}

export interface StreamReaderOptions {
  /** Where to dial (the peer's pool: its URL, TLS options and connection reuse). */
  readonly dispatcher: Dispatcher;
  /** This member's ID (hex): the path names the dialler. */
  readonly localIdHex: string;
  /** Request headers (cluster ID, this member's ID, the peer's ID it expects to reach). */
  headers(): Record<string, string>;
  /** Messages decoded from the stream, in stream order (one call per received chunk). */
  receive(msgs: Message[]): void;
  onBytes(n: number): void;
  /**
   * The peer could not be dialled (down, not listening yet), refused the stream (its status), or
   * the stream broke, ended, or carried something undecodable.
   */
  onFailure(what: 'dial' | 'refused' | 'broken' | 'ended', err?: unknown): void;
  onUp(): void;
  /** The peer answered 410: this member was removed from the cluster. */
  onRemoved(): void;
}

/** The dialling side: keeps one GET open to the peer, redialling with backoff when it ends. */
export class StreamReader {
  private readonly abort = new AbortController();
  /** A stream is open and has delivered its first bytes. */
  up = false;

  constructor(private readonly o: StreamReaderOptions) {
    void this.run();
  }

  private async run(): Promise<void> {
    let backoff = DIAL_BACKOFF_MIN_MS;
    while (!this.abort.signal.aborted) {
      const established = await this.readOnce();
      if (this.abort.signal.aborted) break;
      backoff = established ? DIAL_BACKOFF_MIN_MS : Math.min(backoff * 2, DIAL_BACKOFF_MAX_MS);
      await new Promise<void>((r) => {
        const t = setTimeout(r, backoff);
        this.abort.signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
      });
    }
  }

  /** One stream from dial to end; true when it was established (the backoff starts over). */
  private async readOnce(): Promise<boolean> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.o.dispatcher.request({
        method: 'GET', path: STREAM_PATH + this.o.localIdHex, headers: this.o.headers(), signal: this.abort.signal,
        headersTimeout: STREAM_READ_TIMEOUT_MS, bodyTimeout: STREAM_READ_TIMEOUT_MS,
      });
    } catch (e) {
      if (!this.abort.signal.aborted) this.o.onFailure('dial', e);
      return false;
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      if (res.statusCode === 410) this.o.onRemoved();
      this.o.onFailure('refused', res.statusCode);
      return false;
    }
    const decoder = new FrameDecoder();
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (!this.up) {
          this.up = true;
          this.o.onUp();
        }
        this.o.onBytes(chunk.length);
        const msgs = decoder.push(chunk);
        if (msgs.length > 0) this.o.receive(msgs);
      }
      if (!this.abort.signal.aborted) this.o.onFailure('ended');
    } catch (e) {
      if (!this.abort.signal.aborted) this.o.onFailure('broken', e);
      res.body.destroy();
    } finally {
      this.up = false;
    }
    return true;
  }

  close(): void {
    this.abort.abort();
  }
}
