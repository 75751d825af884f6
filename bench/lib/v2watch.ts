// Many concurrent v2 long polls (`GET /v2/keys/<key>?wait=true`), each on its own TCP connection,
// for the `watch10k` row of `npm run bench -- v2`. Raw sockets with a hand-written request and a
// tiny response scanner: 10k undici Clients would cost the bench more memory and CPU than the
// servers it measures, and we need the instant the response *headers* arrive (etcd 3.4 flushes
// them when the watcher is registered: that is our "registered" signal) separately from the
// instant the response *ends* (the event was delivered).
import { connect, type Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------
// pure: scanning one HTTP/1.1 response as it arrives

/**
 * Incremental scanner of one HTTP/1.1 response (latin1 text): status and end of headers, then the
 * end of a chunked or Content-Length body. Enough for the v2 API's answers; not a general parser.
 */
export class ResponseScanner {
  status = 0;
  headersDone = false;
  done = false;
  private buf = '';
  private chunked = false;
  private contentLength = -1;

  feed(text: string): void {
    if (this.done) return;
    this.buf += text;
    if (!this.headersDone) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.slice(0, end + 2);
      this.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      this.chunked = /\r\ntransfer-encoding:[ \t]*chunked[ \t]*\r\n/i.test(head);
      const cl = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n/i.exec(head);
      this.contentLength = cl === null ? -1 : Number(cl[1]);
      this.headersDone = true;
      this.buf = this.buf.slice(end + 4);
    }
    // JSON escapes CR and LF inside strings, so "\r\n0\r\n\r\n" can only be the last chunk.
    if (this.chunked) this.done = /(?:^|\r\n)0\r\n\r\n$/.test(this.buf);
    else if (this.contentLength >= 0) this.done = this.buf.length >= this.contentLength;
  }

  /** The body so far, de-chunked. */
  body(): string {
    if (!this.chunked) return this.buf;
    let out = '';
    let at = 0;
    for (;;) {
      const eol = this.buf.indexOf('\r\n', at);
      if (eol < 0) return out;
      const size = parseInt(this.buf.slice(at, eol), 16);
      if (!(size > 0)) return out;
      out += this.buf.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// I/O: the long polls

export interface LongPoll {
  socket: Socket;
  scanner: ResponseScanner;
  /** process.hrtime.bigint() when the response headers had arrived / when the response ended */
  headersAt?: bigint;
  doneAt?: bigint;
  error?: string;
}

export interface OpenOptions {
  /** "127.0.0.1" */
  host: string;
  port: number;
  /** "/v2/keys/dir/key?wait=true" */
  path: string;
  count: number;
  /** at most this many polls connecting or waiting for their headers at once */
  concurrency: number;
  /** a poll whose headers take longer than this stops holding its opening slot (it keeps waiting) */
  slotTimeoutMs: number;
}

/**
 * Opens `count` long polls, `concurrency` at a time (a burst of 10k SYNs would overflow the
 * servers' accept queues and measure retransmission timers instead). Resolves once every request
 * is written; registration is waited for separately (see waitHeaders).
 */
export async function openLongPolls(o: OpenOptions): Promise<LongPoll[]> {
  const polls: LongPoll[] = [];
  const request = `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nAccept: application/json\r\n\r\n`;
  const openOne = (): Promise<void> =>
    new Promise<void>((res) => {
      const socket = connect({ host: o.host, port: o.port, noDelay: true });
      const poll: LongPoll = { socket, scanner: new ResponseScanner() };
      polls.push(poll);
      let timer: NodeJS.Timeout | undefined = setTimeout(release, o.slotTimeoutMs);
      function release(): void {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        res();
      }
      socket.setEncoding('latin1');
      socket.on('connect', () => socket.write(request));
      socket.on('data', (text: string) => {
        const sc = poll.scanner;
        const had = sc.headersDone;
        sc.feed(text);
        if (!had && sc.headersDone) {
          poll.headersAt = process.hrtime.bigint();
          release();
        }
        if (sc.done) {
          poll.doneAt = process.hrtime.bigint();
          socket.destroy();
        }
      });
      const fail = (why: string): void => {
        if (poll.doneAt === undefined && poll.error === undefined) poll.error = why;
        release();
      };
      socket.on('error', (e) => fail(e.message));
      socket.on('close', () => fail('connection closed before the response ended'));
    });
  let started = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, o.count) }, async () => {
      while (started < o.count) {
        started++;
        await openOne();
      }
    }),
  );
  return polls;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until every poll has its headers or has failed, until timeoutMs, or until no poll got its
 * headers for stallMs (a server that does not flush them); returns how many have headers.
 */
export async function waitHeaders(polls: readonly LongPoll[], timeoutMs: number, stallMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const have = polls.filter((p) => p.headersAt !== undefined).length;
    const pending = polls.filter((p) => p.headersAt === undefined && p.error === undefined).length;
    if (have !== last) {
      last = have;
      lastChange = Date.now();
    }
    if (pending === 0 || Date.now() >= deadline || Date.now() - lastChange >= stallMs) return have;
    await sleep(50);
  }
}

/** Waits until every poll has ended (answered or failed), or until timeoutMs. */
export async function waitDone(polls: readonly LongPoll[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && polls.some((p) => p.doneAt === undefined && p.error === undefined)) await sleep(5);
}

export function closeAll(polls: readonly LongPoll[]): void {
  for (const p of polls) p.socket.destroy();
}
