// The I/O edge of the authority fix: a Duplex between a gRPC connection's socket and grpc-js's
// HTTP/2 session. Client bytes go through AuthorityRewriter; server bytes are written straight to
// the socket. Node's HTTP/2 reads a non-native stream through a JS shim (JSStreamSocket).
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { AuthorityRewriter } from './authority.js';

export function rewritingStream(socket: Socket): Duplex {
  const rewriter = new AuthorityRewriter();
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
  // What grpc-js reads from session.socket: peer and local addresses for getPeer() and channelz.
  for (const prop of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(stream, prop, { get: () => socket[prop] });
  }
  // The socket was paused while the listener sniffed the preface and unshifted it.
  socket.resume();
  // alpnProtocol stays undefined: Node's HTTP/2 server would answer a TLS client that offered no
  // ALPN (alpnProtocol false) with an HTTP/1.0 403; the preface already said it speaks h2.
  if (!(socket instanceof TLSSocket)) return stream;
  // grpc-js's getAuthContext() gives the client certificate only if session.socket is a
  // TLSSocket (instanceof, through Node's session.socket proxy, which reads the prototype of the
  // stream it was given): present the TLS socket's prototype and its certificate methods.
  const tls = socket;
  Object.assign(stream, {
    encrypted: true,
    getPeerCertificate: (detailed?: boolean) => tls.getPeerCertificate(detailed === true),
    getCertificate: () => tls.getCertificate(),
    getCipher: () => tls.getCipher(),
    getProtocol: () => tls.getProtocol(),
  });
  Object.defineProperty(stream, 'authorized', { get: () => tls.authorized });
  return new Proxy(stream, { getPrototypeOf: () => TLSSocket.prototype });
}
