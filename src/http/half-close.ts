// A client that half-closes its connection (shuts down its write side, as `nc -N` does) after a
// request, as etcd's Go server treats it: the answer still goes out, and the connection ends
// after it; but a response that lasts until the client goes away (a watch, a stream, a blocking
// Lock or Campaign) ends at the FIN, as Go's CloseNotify fires on it. Node's HTTP server ends
// the connection at the FIN unless both its socket and the server allow half-open connections.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const ENDS_AT_FIN = Symbol('endsAtClientFin');

type Marked = ServerResponse & { [ENDS_AT_FIN]?: () => void };

/** The listener's HTTP/1 sockets: a FIN ends only a response marked with endsAtClientFin. */
export function allowHalfClose(socket: Socket): void {
  socket.allowHalfOpen = true;
  socket.once('end', () => {
    // Node's current response on the socket (the one being answered).
    const res = (socket as Socket & { _httpMessage?: Marked | null })._httpMessage;
    res?.[ENDS_AT_FIN]?.();
  });
}

/**
 * Marks a response that lasts until its client goes away: a FIN from the client ends it, by
 * `onFin` (which ends the response itself, as a v2 long poll ends with an empty body) or else by
 * closing the connection.
 */
export function endsAtClientFin(res: ServerResponse, onFin?: () => void): void {
  const end = onFin ?? (() => res.socket?.destroy());
  (res as Marked)[ENDS_AT_FIN] = end;
  if (res.socket?.readableEnded === true) end(); // the FIN came first
}
