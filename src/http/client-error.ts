// HTTP requests that never reach a route: answered as Go's net/http (etcd's HTTP server) does.
import type { Socket } from 'node:net';

/**
 * Go's http.Server reads at most DefaultMaxHeaderBytes (1 MiB) of request line and headers, plus
 * the 4096 bytes of slack its reader allows; Node's default (16 KiB) would refuse headers etcd
 * takes (long tokens, big cookies behind proxies).
 */
export const MAX_HEADER_BYTES = (1 << 20) + 4096;

/**
 * A request Node's parser refused: Go's bare answers, then the connection closes. Headers past
 * the limit: `431 Request Header Fields Too Large`; anything else malformed: `400 Bad Request`.
 * Resets and timeouts get no answer (Go closes those silently too).
 */
export function goClientError(err: Error & { code?: string }, socket: Socket): void {
  const code = err.code ?? '';
  if (!code.startsWith('HPE_') || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${status}`);
}
