// gRPC over HTTP/2's wire forms: the length-prefixed message framing (one byte of compressed flag,
// 0: not compressed, the length as a big-endian u32, then the message bytes) and the
// percent-encoding of the grpc-message status text, both ways.

/** `bytes` framed as one uncompressed gRPC message. */
export function grpcFrame(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

/**
 * A status message as gRPC over HTTP/2 percent-encodes it (and grpc-go, so etcd): printable ASCII
 * (0x20-0x7E) stays as it is except `%`; every other byte of its UTF-8 becomes %XX. A lone
 * surrogate is sent as U+FFFD, as UTF-8 encoding replaces it.
 */
export function grpcMessageEncode(s: string): string {
  if (PLAIN.test(s)) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  return out;
}

/** A received status message, percent-decoded (as it came when it is not valid percent-encoding). */
export function grpcMessageDecode(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

const PLAIN = /^[\x20-\x24\x26-\x7e]*$/;
const HEX = '0123456789ABCDEF';
