// Reading a unary request body ourselves (the gateway parses every content type the same way),
// with a cap: bytes past maxBytes are counted and dropped, never buffered.
import type { IncomingMessage } from 'node:http';

export type Body = { readonly kind: 'ok'; readonly bytes: Buffer } | { readonly kind: 'tooLarge'; readonly length: number };

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Body> {
  return new Promise((resolve, reject) => {
    // With a Content-Length the body is copied once into a buffer of its size (no chunk list and
    // concat copy held at the same time); chunked bodies grow a buffer by doubling.
    const declared = Number(req.headers['content-length']);
    let buf = Buffer.allocUnsafe(Number.isSafeInteger(declared) && declared >= 0 && declared <= maxBytes ? declared : 0);
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      const end = length + chunk.length;
      if (end <= maxBytes) {
        if (end > buf.length) {
          const grown = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(end, buf.length * 2, 16 * 1024)));
          buf.copy(grown, 0, 0, length);
          buf = grown;
        }
        chunk.copy(buf, length);
      }
      length = end;
    });
    req.on('end', () => resolve(length <= maxBytes ? { kind: 'ok', bytes: buf.subarray(0, length) } : { kind: 'tooLarge', length }));
    req.on('error', reject);
  });
}
