// HTTP/2's wire vocabulary (RFC 9113) and frame writing, for the code that speaks it byte by byte:
// the client listener (preface sniffing, the header-block rewriter, its SETTINGS) and the
// gateway's HTTP/2 client (upstream/h2.ts).

/** The client connection preface. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;
/** SETTINGS_MAX_FRAME_SIZE's floor: every endpoint takes frames this large. */
export const MIN_MAX_FRAME = 16_384;

// Frame types.
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY_FRAME = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

// Flags.
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY = 0x20;

/** A frame's 9-byte header (the payload goes after it, as a buffer of its own or copied). */
export function frameHeader(len: number, type: number, flags: number, streamId: number): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  f.writeUIntBE(len, 0, 3);
  f[3] = type;
  f[4] = flags;
  f.writeUInt32BE(streamId, 5);
  return f;
}

/**
 * HEADERS (+ CONTINUATION) frames carrying one header block, unpadded, each payload within
 * maxFrame; priority: the HEADERS frame's priority fields, kept when the block is re-framed.
 */
export function frameBlock(streamId: number, endStream: number, priority: Buffer | undefined, block: Buffer, maxFrame = MIN_MAX_FRAME): Buffer[] {
  const frames: Buffer[] = [];
  const firstRoom = maxFrame - (priority?.length ?? 0);
  let pos = 0;
  let first = true;
  do {
    const room = first ? firstRoom : maxFrame;
    const piece = block.subarray(pos, pos + room);
    pos += piece.length;
    const last = pos >= block.length;
    const prefix = first ? priority : undefined;
    const flags = (first ? endStream | (prefix !== undefined ? PRIORITY : 0) : 0) | (last ? END_HEADERS : 0);
    frames.push(frameHeader(piece.length + (prefix?.length ?? 0), first ? HEADERS : CONTINUATION, flags, streamId));
    if (prefix !== undefined) frames.push(prefix);
    frames.push(piece);
    first = false;
  } while (pos < block.length);
  return frames;
}

/** A DATA or HEADERS payload without its padding; undefined when the padding does not fit. */
export function unpad(flags: number, p: Buffer): Buffer | undefined {
  if ((flags & PADDED) === 0) return p;
  const pad = p[0];
  if (pad === undefined || pad >= p.length) return undefined;
  return p.subarray(1, p.length - pad);
}

/**
 * A HEADERS payload's header-block fragment and its priority fields (when PRIORITY is set), the
 * padding dropped; undefined when the padding or the priority fields do not fit.
 */
export function headersFragment(flags: number, p: Buffer): { fragment: Buffer; priority: Buffer | undefined } | undefined {
  const body = unpad(flags, p);
  if (body === undefined) return undefined;
  if ((flags & PRIORITY) === 0) return { fragment: body, priority: undefined };
  if (body.length < 5) return undefined;
  return { fragment: body.subarray(5), priority: body.subarray(0, 5) };
}
