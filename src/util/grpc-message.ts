// gRPC's length-prefixed message framing (gRPC over HTTP/2): one byte of compressed flag (0: not
// compressed), the length as a big-endian u32, then the message bytes.

/** `bytes` framed as one uncompressed gRPC message. */
export function grpcFrame(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}
