// Raw HTTP/1.1 over a socket, for what an HTTP client library would not send: a path exactly as
// written, an unknown method, a half-close right after the request.
import { connect } from 'node:net';

/**
 * Sends `text` on a new connection to `endpoint` ("host:port") and resolves with everything the
 * server wrote before the connection closed. halfClose: the write side is shut down right after
 * the text (as `nc -N` does); otherwise the text should ask for `Connection: close`.
 */
export function rawHttp(endpoint: string, text: string, halfClose: boolean): Promise<string> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), host!, () => {
      if (halfClose) sock.end(text);
      else sock.write(text);
    });
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (out += c));
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
  });
}
