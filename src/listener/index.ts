// One client port for every protocol, as etcd: a connection that opens with the HTTP/2 client
// preface goes to grpc-js (through its connection injector), anything else to the HTTP/1.1 server.
import * as grpc from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

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

export function listenClient(
  url: URL, grpcServer: grpc.Server, http: HttpServer,
): Promise<ClientListener> {
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const sockets = new Set<Socket>();
  // gRPC byte counts: closed connections are summed here, open ones are read at scrape time.
  const grpcSockets = new Set<Socket>();
  const closedGrpc = { received: 0, sent: 0 };
  const route = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
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
        // Node's http2 session reads the buffered bytes itself on the next tick; resuming the
        // socket here would emit them as 'data' to nobody.
        injector.injectConnection(socket);
      } else {
        http.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  };
  const server = createServer({ noDelay: true }, route);
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
