// Reading a unary request body ourselves (the gateway parses every content type the same way),
// with a cap: bytes past maxBytes are counted and dropped, never buffered.
import type { IncomingMessage } from 'node:http';

export type Body = { readonly kind: 'ok'; readonly bytes: Buffer } | { readonly kind: 'tooLarge'; readonly length: number };

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Body> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length <= maxBytes) chunks.push(chunk);
    });
    req.on('end', () => resolve(length <= maxBytes ? { kind: 'ok', bytes: Buffer.concat(chunks) } : { kind: 'tooLarge', length }));
    req.on('error', reject);
  });
}
