// The I/O edge of the authority fix: a Duplex between a gRPC connection's socket and grpc-js's
// HTTP/2 session. Client bytes go through AuthorityRewriter; server bytes are written straight to
// the socket. Node's HTTP/2 reads a non-native stream through a JS shim (JSStreamSocket), so
// session.socket is that shim: no remote address, not a TLSSocket (hence CLIENT_CN_HEADER).
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { AuthorityRewriter } from './authority.js';
import type { HeaderField } from './hpack.js';

/** extra: header fields the rewriter adds to every block (see CLIENT_CN_HEADER). */
export function rewritingStream(socket: Socket, extra: readonly HeaderField[]): Duplex {
  const rewriter = new AuthorityRewriter(extra);
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
  socket.on('data', (chunk: Buffer) => {
    let out: Buffer[];
    try {
      out = rewriter.feed(chunk);
    } catch {
      // Malformed framing or HPACK: a connection error for the server too. End it here.
      socket.destroy();
      return;
    }
    for (const b of out) {
      if (!stream.push(b)) flowing = false;
    }
    if (!flowing) socket.pause();
  });
  socket.once('end', () => stream.push(null));
  socket.once('close', () => stream.destroy());
  // The socket was paused while the listener sniffed the preface and unshifted it.
  socket.resume();
  return stream;
}
