// grpc-go (etcdctl 3.4 among others) dials an endpoint given as http://host:port with the target
// "passthrough:///http://host:port" and sends that whole string as the HTTP/2 :authority. etcd's
// Go server takes it; nghttp2 (Node's HTTP/2, under grpc-js) rejects it as a malformed request and
// resets the stream (PROTOCOL_ERROR), and Node exposes no option to turn that check off. So the
// client-to-server bytes of a gRPC connection go through this rewriter: frames pass through as
// they came, except header blocks, which are HPACK-decoded (that keeps the client's dynamic table
// in step) and, from the first one whose :authority carries a scheme, re-encoded as literals
// without indexing with the scheme dropped. (TLS connections with a client certificate are
// re-encoded from the start: see CLIENT_CN_HEADER.)
import { encodeLiterals, HpackDecoder, type HeaderField } from './hpack.js';

const PREFACE_LENGTH = 24;
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** A header block's encoded bytes beyond this end the connection (far above any gRPC metadata limit). */
const MAX_BLOCK = 1 << 20;
/** Every HTTP/2 endpoint accepts frames this large (SETTINGS_MAX_FRAME_SIZE's floor). */
const MAX_FRAME = 16384;
/** What nghttp2 accepts in an authority (its check_authority): anything else stays for it to reject. */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]+$/;

/**
 * The verified client certificate's Common Name, for the gRPC handlers (src/grpc/services.ts),
 * URI-encoded. Node's HTTP/2 session reads the rewriter through a JS shim, not the TLSSocket, so
 * grpc-js's getAuthContext() cannot see the certificate: the listener adds this field to every
 * header block of a TLS connection with a verified certificate, and whatever a client sends
 * under this name is dropped on every connection.
 */
export const CLIENT_CN_HEADER = 'x-etcd-client-cert-cn';

/** http://x or https://x -> x, when x is a valid authority; undefined when nothing to change. */
export function fixAuthority(value: string): string | undefined {
  const m = /^https?:\/\/(.*)$/i.exec(value);
  if (m === null || !AUTHORITY.test(m[1]!)) return undefined;
  return m[1]!;
}

/**
 * The pure core: fed the client's bytes in order, returns the bytes to hand the HTTP/2 server.
 * Outside header blocks the output is slices of the input (no copies).
 */
export class AuthorityRewriter {
  private readonly decoder = new HpackDecoder();
  /** Once a block was re-encoded the server's table no longer mirrors the client's: re-encode all. */
  private rewriting: boolean;
  private preface = PREFACE_LENGTH;
  /** Payload bytes of the current pass-through frame still to forward. */
  private passing = 0;
  /** A frame header split across chunks, or a header-block frame being collected. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private frameHeader: Buffer | undefined;
  /** The header block in progress: its HEADERS frame's header and priority fields, fragments, raw frames. */
  private block: { streamId: number; flags: number; priority: Buffer | undefined; fragments: Buffer[]; raw: Buffer[]; bytes: number } | undefined;
  /** Header blocks changed (a scheme dropped from :authority, a client's CLIENT_CN_HEADER dropped). */
  rewrites = 0;

  /** extra: fields added to every header block (the listener's CLIENT_CN_HEADER). */
  constructor(private readonly extra: readonly HeaderField[] = []) {
    this.rewriting = extra.length > 0;
  }

  /** Throws HpackError/Error on input the server would reject as a connection error anyway. */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    // chunk[runStart, pos) passes through as it came; flush() hands it on before anything else.
    let runStart = 0;
    const flush = (): void => {
      if (pos > runStart) out.push(chunk.subarray(runStart, pos));
      runStart = pos;
    };
    // Bytes [pos, pos + n) that are buffered, not passed through.
    const buffer = (n: number): void => {
      flush();
      this.take(chunk, pos, n);
      pos += n;
      runStart = pos;
    };
    while (pos < chunk.length) {
      const avail = chunk.length - pos;
      if (this.preface > 0 || this.passing > 0) {
        const n = Math.min(this.preface > 0 ? this.preface : this.passing, avail);
        if (this.preface > 0) this.preface -= n;
        else this.passing -= n;
        pos += n;
        continue;
      }
      if (this.frameHeader === undefined) {
        let header: Buffer;
        let straddled = false;
        if (this.pendingLength === 0 && avail >= FRAME_HEADER) {
          header = chunk.subarray(pos, pos + FRAME_HEADER);
        } else {
          // A frame header split across chunks: the only bytes copied outside header blocks.
          buffer(Math.min(FRAME_HEADER - this.pendingLength, avail));
          if (this.pendingLength < FRAME_HEADER) break;
          header = this.drain();
          straddled = true;
        }
        const type = header[3]!;
        const length = header.readUIntBE(0, 3);
        if (type === HEADERS || type === CONTINUATION) {
          // The server announces no larger SETTINGS_MAX_FRAME_SIZE: nghttp2 would end the
          // connection with FRAME_SIZE_ERROR; this also bounds what is buffered here.
          if (length > MAX_FRAME) throw new Error('header frame larger than SETTINGS_MAX_FRAME_SIZE');
          if (!straddled) {
            flush();
            pos += FRAME_HEADER;
            runStart = pos;
            header = Buffer.from(header); // the chunk's slice is not kept past this call
          }
          this.frameHeader = header;
          if (length === 0) this.frame(out, header, Buffer.alloc(0));
        } else {
          if (straddled) out.push(header);
          else pos += FRAME_HEADER;
          this.passing = length;
        }
        continue;
      }
      // Collecting a HEADERS/CONTINUATION payload.
      const length = this.frameHeader.readUIntBE(0, 3);
      buffer(Math.min(length - this.pendingLength, avail));
      if (this.pendingLength === length) this.frame(out, this.frameHeader, this.drain());
    }
    flush();
    return out;
  }

  private take(chunk: Buffer, pos: number, n: number): void {
    if (n === 0) return;
    this.pending.push(Buffer.from(chunk.subarray(pos, pos + n)));
    this.pendingLength += n;
  }

  private drain(): Buffer {
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingLength = 0;
    return b;
  }

  /** A complete HEADERS or CONTINUATION frame. */
  private frame(out: Buffer[], header: Buffer, payload: Buffer): void {
    this.frameHeader = undefined;
    const type = header[3]!;
    const flags = header[4]!;
    const streamId = header.readUInt32BE(5) & 0x7fffffff;
    if (type === HEADERS) {
      if (this.block !== undefined) throw new Error('HEADERS inside a header block');
      let start = 0;
      let end = payload.length;
      if (flags & PADDED) {
        if (payload.length < 1) throw new Error('HEADERS too short');
        end -= payload[0]!;
        start = 1;
      }
      let priority: Buffer | undefined;
      if (flags & PRIORITY) {
        priority = payload.subarray(start, start + 5);
        start += 5;
      }
      if (end < start) throw new Error('HEADERS padding too long');
      this.block = { streamId, flags, priority, fragments: [payload.subarray(start, end)], raw: [header, payload], bytes: payload.length };
    } else {
      if (this.block === undefined || this.block.streamId !== streamId) throw new Error('CONTINUATION out of place');
      this.block.fragments.push(payload);
      this.block.raw.push(header, payload);
      this.block.bytes += payload.length;
      if (this.block.bytes > MAX_BLOCK) throw new Error('header block too large');
    }
    if (flags & END_HEADERS) this.endBlock(out, this.block);
  }

  private endBlock(out: Buffer[], block: NonNullable<AuthorityRewriter['block']>): void {
    this.block = undefined;
    const frags = block.fragments;
    const fields = this.decoder.decode(frags.length === 1 ? frags[0]! : Buffer.concat(frags));
    let changed = false;
    const kept: HeaderField[] = [];
    for (const f of fields) {
      if (f.name === CLIENT_CN_HEADER) {
        changed = true;
        continue;
      }
      if (f.name === ':authority') {
        const fixed = fixAuthority(f.value);
        if (fixed !== undefined) {
          f.value = fixed;
          changed = true;
        }
      }
      kept.push(f);
    }
    if (changed) this.rewrites++;
    this.rewriting ||= changed;
    if (!this.rewriting) {
      out.push(...block.raw);
      return;
    }
    kept.push(...this.extra);
    out.push(...frameBlock(block.streamId, block.flags & END_STREAM, block.priority, encodeLiterals(kept)));
  }
}

/** HEADERS (+ CONTINUATION) frames carrying one header block, unpadded, each within MAX_FRAME. */
export function frameBlock(streamId: number, endStream: number, priority: Buffer | undefined, block: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  const firstRoom = MAX_FRAME - (priority?.length ?? 0);
  let pos = 0;
  let first = true;
  do {
    const room = first ? firstRoom : MAX_FRAME;
    const piece = block.subarray(pos, pos + room);
    pos += piece.length;
    const last = pos >= block.length;
    const prefix = first ? priority : undefined;
    const header = Buffer.alloc(FRAME_HEADER);
    header.writeUIntBE(piece.length + (prefix?.length ?? 0), 0, 3);
    header[3] = first ? HEADERS : CONTINUATION;
    header[4] = (first ? endStream | (prefix !== undefined ? PRIORITY : 0) : 0) | (last ? END_HEADERS : 0);
    header.writeUInt32BE(streamId, 5);
    frames.push(header);
    if (prefix !== undefined) frames.push(prefix);
    frames.push(piece);
    first = false;
  } while (pos < block.length);
  return frames;
}
