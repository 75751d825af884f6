// What Go's net/http answers before any handler runs, for the requests Node or Fastify refuse
// before ours do: a request line Node's parser rejects (an unknown method, a bad header) and a
// path that is not valid percent-encoding. etcd clients see Go's plain-text answers, never
// Fastify's JSON ({"error":"Bad Request","code":"FST_ERR_BAD_URL",...}).
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

const TEXT = 'text/plain; charset=utf-8';

/**
 * Go's http.Server reads at most DefaultMaxHeaderBytes (1 MiB) of request line and headers, plus
 * the 4096 bytes of slack its reader allows; Node's default (16 KiB) would refuse headers etcd
 * takes (long tokens, big cookies behind proxies). Past it: clientErrorHandler's 431.
 */
export const MAX_HEADER_BYTES = (1 << 20) + 4096;

/** Fastify's frameworkErrors: a URL it cannot decode (FST_ERR_BAD_URL) gets Go's 400. */
export function frameworkErrors(_err: Error, _req: FastifyRequest, reply: FastifyReply): void {
  void reply.code(400).headers({ 'content-type': TEXT, connection: 'close' }).send('400 Bad Request');
}

/** Fastify's clientErrorHandler: Node's HTTP parser refused the request; the connection closes, as Go's does. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? ['431 Request Header Fields Too Large', '431 Request Header Fields Too Large'] : ['400 Bad Request', '400 Bad Request'];
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: ${TEXT}\r\nConnection: close\r\n\r\n${text}`);
}
