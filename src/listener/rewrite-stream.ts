// The I/O edge of the authority fix: how a gRPC connection's socket reaches grpc-js's HTTP/2
// session. Most connections need nothing (grpc-js clients, the bench; etcdctl for most commands):
// they are handed over as they are, so Node's HTTP/2 reads the socket natively. The others (an
// :authority with a scheme, see authority.ts) go through a Duplex whose client bytes pass the
// AuthorityRewriter (for the connection's life once it rewrote a block). Node's HTTP/2 reads
// such a non-native stream through a JS shim (JSStreamSocket): a JS hop per chunk, one write in
// flight per event-loop turn, no remote address, not a TLSSocket (hence client-cn.ts).
//
// Which one shows only in the client's first HEADERS block, and grpc-go and grpc-js send none
// before the server's SETTINGS frame: so the listener sends that frame itself (an empty one: the
// protocol's defaults), reads the client's bytes up to the end of its first header block, and
// only then decides. The HTTP/2 server sends its own SETTINGS when it gets the connection, which
// the client also acknowledges; the rewriter drops the client's ACK of the listener's frame.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { AuthorityRewriter } from './authority.js';
import { frameHeader, SETTINGS } from '../util/h2-frames.js';
import type { HeaderField } from '../util/hpack.js';

/** A SETTINGS frame with no parameters on stream 0: the server connection preface. */
const SERVER_PREFACE = frameHeader(0, SETTINGS, 0, 0);
/**
 * A client that sends no request this long after connecting is put on the rewriter. Long enough
 * for clients that connect first and call a little later (grpc-js's waitForReady, pools); short
 * of the SETTINGS-ACK timeouts some clients keep (gRPC C-core: a minute at least), as the
 * client's SETTINGS is acknowledged by the HTTP/2 server only once it has the connection.
 */
export const DECIDE_TIMEOUT_MS = 10_000;
/** Client bytes held back while deciding beyond this (SETTINGS/PRIORITY floods): put on the rewriter. */
const DECIDE_MAX_BYTES = 64 * 1024;

/** How a connection was handed to grpc-js: for tests and counters. */
export type HandOver = 'socket' | 'rewriter';

export interface HandOverOptions {
  /** Fields a rewritten connection adds to every header block (client-cn.ts); a connection handed over as it is needs none. */
  readonly extra?: readonly HeaderField[];
  /** DECIDE_TIMEOUT_MS unless given (tests). */
  readonly timeoutMs?: number;
  /** Told how, once decided (not called if the connection ends first). */
  readonly done?: (how: HandOver) => void;
}

/**
 * Hands a gRPC connection (its HTTP/2 preface unshifted, the socket paused) to grpc-js: the socket
 * itself if its first header block needs nothing, else the rewriting Duplex.
 */
export function handOverGrpc(socket: Socket, inject: (connection: Duplex) => void, opts: HandOverOptions = {}): void {
  const rewriter = new AuthorityRewriter(opts.extra);
  const held: Buffer[] = [];
  let heldBytes = 0;
  const finish = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.pause();
    if (rewriter.through) {
      if (heldBytes > 0) socket.unshift(held.length === 1 ? held[0]! : Buffer.concat(held));
      inject(socket);
      opts.done?.('socket');
    } else {
      inject(rewritingStream(socket, rewriter, held));
      opts.done?.('rewriter');
    }
  };
  const onData = (chunk: Buffer): void => {
    try {
      for (const b of rewriter.feed(chunk)) {
        held.push(b);
        heldBytes += b.length;
      }
    } catch {
      // Malformed framing or HPACK: a connection error for the server too. End it here.
      clearTimeout(timer);
      socket.destroy();
      return;
    }
    if (heldBytes > DECIDE_MAX_BYTES) rewriter.settle();
    if (rewriter.through || !rewriter.deciding) finish();
  };
  const onClose = (): void => clearTimeout(timer);
  const timer = setTimeout(() => {
    rewriter.settle();
    finish();
  }, opts.timeoutMs ?? DECIDE_TIMEOUT_MS);
  socket.on('data', onData);
  socket.once('close', onClose);
  socket.write(SERVER_PREFACE);
  socket.resume();
}

/** The rewriter's Duplex: first: its output so far, handed on before anything else. */
function rewritingStream(socket: Socket, rewriter: AuthorityRewriter, first: readonly Buffer[]): Duplex {
  let flowing = true;
  const writeAll = (chunks: Buffer[], cb: (err?: Error | null) => void): void => {
    let ok = true;
    if (chunks.length > 1) socket.cork();
    for (const c of chunks) ok = socket.write(c) && ok;
    if (chunks.length > 1) socket.uncork();
    // Backpressure: the session's next write waits for the socket to drain.
    if (ok) cb();
    else socket.once('drain', () => cb());
  };
  const stream = new Duplex({
    read() {
      if (!flowing) {
        flowing = true;
        socket.resume();
      }
    },
    write(chunk: Buffer, _enc, cb) {
      writeAll([chunk], cb);
    },
    writev(chunks, cb) {
      writeAll(chunks.map((c) => c.chunk as Buffer), cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  const push = (out: readonly Buffer[]): void => {
    for (const b of out) {
      if (!stream.push(b)) flowing = false;
    }
    if (!flowing) socket.pause();
  };
  socket.on('data', (chunk: Buffer) => {
    let out: Buffer[];
    try {
      out = rewriter.feed(chunk);
    } catch {
      socket.destroy();
      return;
    }
    push(out);
  });
  socket.once('end', () => stream.push(null));
  socket.once('close', () => stream.destroy());
  push(first);
  if (flowing) socket.resume();
  return stream;
}
