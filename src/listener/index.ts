// One client port for every protocol, as etcd: a connection that opens with the HTTP/2 client
// preface goes to grpc-js (through its connection injector), anything else to the HTTP/1.1 server.
// An https:// URL first ends TLS here (with the certificate files as they are on disk now: a
// rotated certificate is picked up without a restart; a certificate the CRL lists is cut off right
// after the handshake, as etcd does), then routes the decrypted stream the same way. gRPC
// connections are handed over by rewrite-stream.ts: as they are, or through the authority
// rewriter (authority.ts) when their first request needs it.
import * as grpc from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { certCommonName, clientCnField } from './client-cn.js';
import { handOverGrpc } from './rewrite-stream.js';
import { allowHalfClose } from '../http/half-close.js';
import { identityRefusal } from '../tls/identity.js';
import { PREFACE } from '../util/h2-frames.js';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import type { TlsFiles } from '../tls/files.js';


export interface ClientListener {
  readonly server: Server;
  readonly port: number;
  /** Bytes read and written on gRPC (HTTP/2) connections so far, framing included. */
  grpcBytes(): { received: number; sent: number };
  /** Stops accepting connections; open ones keep being served. */
  stopAccepting(): void;
  /** Stops accepting and destroys every open connection. */
  close(): Promise<void>;
}

/** The Common Name of the client certificate a TLS connection verified (--client-cert-auth), if any. */
export function verifiedCommonName(socket: Socket): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  return certCommonName(socket.getPeerCertificate());
}

/**
 * ALPN for the TLS port. gRPC clients (Go, grpc-js, C-core) offer h2 alone; curl, browsers and
 * HTTP libraries offer http/1.1 too. etcd (Go) serves plain HTTP over h2 as well, which grpc-js
 * cannot: so a client that can speak HTTP/1.1 is given it, and only h2-only clients get h2.
 * A client that offers neither (or no ALPN) is routed by the preface sniff like a plain one.
 */
function selectAlpn({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes('http/1.1')) return 'http/1.1';
  if (protocols.includes('h2')) return 'h2';
  return undefined;
}

/** TLS of an https:// listener. */
export interface ListenerTls {
  /** Certificate, key, CA, CRL and the fixed options (ciphers, minimum version). */
  readonly files: TlsFiles;
  /** --client-cert-auth: a client certificate signed by the CA is asked for and required. */
  readonly clientCertAuth: boolean;
  /** --client-cert-allowed-hostname ('' = any): the certificate must be valid for it. */
  readonly allowedHostname?: string;
  /** A connection cut after its handshake (its certificate is revoked). */
  onRejected?(reason: string, remoteAddress: string | undefined): void;
}

/** tls: serve TLS (url is https://). */
export function listenClient(
  url: URL, grpcServer: grpc.Server, http: HttpServer, tls?: ListenerTls,
): Promise<ClientListener> {
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const sockets = new Set<Socket>();
  // gRPC byte counts: closed connections are summed here, open ones are read at scrape time.
  const grpcSockets = new Set<Socket>();
  const closedGrpc = { received: 0, sent: 0 };
  const route = (socket: Socket): void => {
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return; // need more bytes to decide
      socket.off('data', onData);
      socket.pause();
      socket.unshift(head);
      if (isH2) {
        grpcSockets.add(socket);
        socket.once('close', () => {
          grpcSockets.delete(socket);
          closedGrpc.received += socket.bytesRead;
          closedGrpc.sent += socket.bytesWritten;
        });
        // grpc-go sends an http:// endpoint as the :authority, which Node's HTTP/2 rejects: such
        // connections go through the rewriter (authority.ts), the others as they are.
        const cn = verifiedCommonName(socket);
        handOverGrpc(socket, (c) => injector.injectConnection(c), { extra: cn === undefined ? [] : [clientCnField(cn)] });
      } else {
        allowHalfClose(socket);
        http.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  };
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  let accept = (socket: Socket): void => {
    track(socket);
    route(socket);
  };
  if (tls !== undefined) {
    // Never listens itself: the net server below hands it each TCP connection. A failed handshake
    // (no or an untrusted client certificate with --client-cert-auth) ends that connection only.
    let applied = tls.files.current();
    const tlsServer = createTlsServer({
      ...applied.options, requestCert: tls.clientCertAuth, rejectUnauthorized: tls.clientCertAuth, ALPNCallback: selectAlpn,
    }, (s: TLSSocket) => {
      const why = tls.files.revocation(s) ?? (tls.clientCertAuth ? identityRefusal(s, { cn: '', hostname: tls.allowedHostname ?? '' }) : undefined);
      if (why !== undefined) {
        tls.onRejected?.(why, s.remoteAddress);
        s.destroy();
        return;
      }
      route(s);
    });
    tlsServer.on('tlsClientError', (_err, s) => s.destroy());
    accept = (socket: Socket): void => {
      track(socket);
      socket.on('error', () => socket.destroy());
      // The files are looked at (at most once a second) before this connection's handshake.
      const now = tls.files.current();
      if (now.version !== applied.version) {
        applied = now;
        tlsServer.setSecureContext(now.options);
      }
      tlsServer.emit('connection', socket);
    };
  }
  const server = createServer({ noDelay: true }, accept);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(url.port), host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve({
        server,
        port: typeof addr === 'object' && addr !== null ? addr.port : Number(url.port),
        grpcBytes: () => {
          const b = { ...closedGrpc };
          for (const s of grpcSockets) {
            b.received += s.bytesRead;
            b.sent += s.bytesWritten;
          }
          return b;
        },
        stopAccepting: () => {
          if (server.listening) server.close();
        },
        close: () => new Promise<void>((res) => {
          if (server.listening) server.close(() => res());
          else res();
          injector.destroy();
          for (const s of sockets) s.destroy();
        }),
      });
    });
  });
}
