// grpc-go (etcdctl 3.4 among others) dials an endpoint given as http://host:port with the target
// "passthrough:///http://host:port" and sends that whole string as the HTTP/2 :authority. etcd's
// Go server takes it; nghttp2 (Node's HTTP/2, under grpc-js) rejects it as a malformed request and
// resets the stream (PROTOCOL_ERROR), and Node exposes no option to turn that check off. So the
// client-to-server bytes of a gRPC connection start through this rewriter: frames pass through as
// they came, except header blocks, which are HPACK-decoded (that keeps the client's dynamic table
// in step) and, from the first one whose :authority carries a scheme, re-encoded as literals
// without indexing with the scheme dropped.
//
// The first header block decides. When it needed no change, the rewriter stops parsing: every
// later byte passes as it came (`through`), and the listener hands the socket itself to grpc-js
// (rewrite-stream.ts). Safe because the clients that send a scheme send it on every call of the
// connection: grpc-go and grpc-js take the :authority from the channel target, once per channel;
// only an explicit per-call authority override (grpc-js's `host` call option, grpc-go's
// CallAuthority) could differ later, and no etcd client sets one — such a call would get the
// stream reset nghttp2 gives it. A connection whose first block was rewritten keeps the rewriter
// for life: the server's HPACK decoder never saw the client's dynamic-table entries, so no later
// block may pass unchanged.
import { CLIENT_CN_HEADER } from './client-cn.js';
import {
  ACK, CONTINUATION, END_HEADERS, END_STREAM, FRAME_HEADER_BYTES, frameBlock, HEADERS, headersFragment, MIN_MAX_FRAME, PREFACE,
  PRIORITY_FRAME, SETTINGS, WINDOW_UPDATE,
} from '../util/h2-frames.js';
import { encodeLiterals, HpackDecoder, type HeaderField } from '../util/hpack.js';

// The header's home is client-cn.ts; re-exported for the callers that knew it from here.
export { CLIENT_CN_HEADER };

/** A header block's encoded bytes beyond this end the connection (far above any gRPC metadata limit). */
const MAX_BLOCK = 1 << 20;
/** What nghttp2 accepts in an authority (its check_authority): anything else stays for it to reject. */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]+$/;

/** http://x or https://x -> x, when x is a valid authority; undefined when nothing to change. */
export function fixAuthority(value: string): string | undefined {
  const m = /^https?:\/\/(.*)$/i.exec(value);
  if (m === null || !AUTHORITY.test(m[1]!)) return undefined;
  return m[1]!;
}

/**
 * The pure core: fed the client's bytes in order, returns the bytes to hand the HTTP/2 server.
 * Outside header blocks the output is slices of the input (no copies).
 *
 * The listener answers the client's preface with a SETTINGS frame of its own before any HTTP/2
 * server exists (rewrite-stream.ts: grpc-go and grpc-js send no request before the server's
 * SETTINGS). The client's first SETTINGS ACK answers that frame, so it is dropped here: the HTTP/2
 * server, which sends its own SETTINGS later, must see exactly one ACK for it.
 */
export class AuthorityRewriter {
  private readonly decoder = new HpackDecoder();
  /** Once a block was re-encoded the server's table no longer mirrors the client's: re-encode all. */
  private rewriting = false;
  /** The client's first SETTINGS ACK (the listener's SETTINGS) was dropped. */
  private ackDropped = false;
  /** What the connection's first header block needed: nothing, a change, or not seen yet. */
  private firstBlock: 'pending' | 'clean' | 'changed' = 'pending';
  /** The listener may still hand the socket itself to grpc-js (see deciding). */
  private handOverOpen = true;
  private passThrough = false;
  private preface = PREFACE.length;
  /** Payload bytes of the current pass-through frame still to forward. */
  private passing = 0;
  /** A frame header split across chunks, or a header-block frame being collected. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private frameHeader: Buffer | undefined;
  /** The header block in progress: its HEADERS frame's header and priority fields, fragments, raw frames. */
  private block: { streamId: number; flags: number; priority: Buffer | undefined; fragments: Buffer[]; raw: Buffer[]; bytes: number } | undefined;
  /** Header blocks whose :authority lost its scheme. */
  rewrites = 0;

  /**
   * extra: fields added to every header block while the connection stays on the rewriter (the
   * listener's CLIENT_CN_HEADER); a connection handed over as it is needs none (client-cn.ts).
   */
  constructor(private readonly extra: readonly HeaderField[] = []) {}

  /**
   * From here on every byte passes as it came, unparsed: the first header block needed no change
   * and the listener's SETTINGS ACK is out of the way. The listener then hands the socket itself
   * to grpc-js if it still can (deciding was true before the bytes that set this).
   */
  get through(): boolean {
    return this.passThrough;
  }

  /**
   * Nothing has decided the connection yet: the first header block has not ended, and no frame
   * has arrived that the HTTP/2 server must answer (anything but SETTINGS, WINDOW_UPDATE,
   * PRIORITY and the block itself). Once false without `through`, the listener puts the
   * connection on the rewriter.
   */
  get deciding(): boolean {
    return this.handOverOpen && this.firstBlock === 'pending';
  }

  /** The listener will not hand the socket over as it is (it waited long enough, or buffered enough). */
  settle(): void {
    this.handOverOpen = false;
  }

  /** Throws HpackError/Error on input the server would reject as a connection error anyway. */
  feed(chunk: Buffer): Buffer[] {
    if (this.passThrough) return [chunk];
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
    while (pos < chunk.length && !this.passThrough) {
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
        if (this.pendingLength === 0 && avail >= FRAME_HEADER_BYTES) {
          header = chunk.subarray(pos, pos + FRAME_HEADER_BYTES);
        } else {
          // A frame header split across chunks: the only bytes copied outside header blocks.
          buffer(Math.min(FRAME_HEADER_BYTES - this.pendingLength, avail));
          if (this.pendingLength < FRAME_HEADER_BYTES) break;
          header = this.drain();
          straddled = true;
        }
        const type = header[3]!;
        const length = header.readUIntBE(0, 3);
        if (type === SETTINGS && (header[4]! & ACK) !== 0 && !this.ackDropped) {
          if (length !== 0) throw new Error('SETTINGS ACK with a payload');
          if (!straddled) {
            flush();
            pos += FRAME_HEADER_BYTES;
            runStart = pos;
          }
          this.ackDropped = true;
          this.passThrough = this.firstBlock === 'clean' && !this.rewriting;
          continue;
        }
        if (type !== SETTINGS && type !== WINDOW_UPDATE && type !== PRIORITY_FRAME && type !== HEADERS && type !== CONTINUATION) {
          this.handOverOpen = false;
        }
        if (type === HEADERS || type === CONTINUATION) {
          // The server announces no larger SETTINGS_MAX_FRAME_SIZE: nghttp2 would end the
          // connection with FRAME_SIZE_ERROR; this also bounds what is buffered here.
          if (length > MIN_MAX_FRAME) throw new Error('header frame larger than SETTINGS_MAX_FRAME_SIZE');
          if (!straddled) {
            flush();
            pos += FRAME_HEADER_BYTES;
            runStart = pos;
            header = Buffer.from(header); // the chunk's slice is not kept past this call
          }
          this.frameHeader = header;
          if (length === 0) this.frame(out, header, Buffer.alloc(0));
        } else {
          if (straddled) out.push(header);
          else pos += FRAME_HEADER_BYTES;
          this.passing = length;
        }
        continue;
      }
      // Collecting a HEADERS/CONTINUATION payload.
      const length = this.frameHeader.readUIntBE(0, 3);
      buffer(Math.min(length - this.pendingLength, avail));
      if (this.pendingLength === length) this.frame(out, this.frameHeader, this.drain());
    }
    // Passing through from a block's end or the ACK on: the rest of the chunk as it came.
    if (this.passThrough) pos = chunk.length;
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
      const h = headersFragment(flags, payload);
      if (h === undefined) throw new Error('HEADERS padding or priority fields do not fit');
      this.block = { streamId, flags, priority: h.priority, fragments: [h.fragment], raw: [header, payload], bytes: payload.length };
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
    for (const f of fields) {
      if (f.name !== ':authority') continue;
      const fixed = fixAuthority(f.value);
      if (fixed !== undefined) {
        f.value = fixed;
        changed = true;
      }
    }
    if (changed) this.rewrites++;
    if (this.firstBlock === 'pending') {
      this.firstBlock = changed ? 'changed' : 'clean';
      // extra is needed only on the rewriter: passing through with it is for a hand-over.
      this.passThrough = !changed && this.ackDropped && (this.extra.length === 0 || this.handOverOpen);
      // Staying on the rewriter with fields to add: they go in every block, this one included.
      if (!this.passThrough && this.extra.length > 0) this.rewriting = true;
    }
    this.rewriting ||= changed;
    if (!this.rewriting) {
      // A client's own CLIENT_CN_HEADER may pass here: unsealed, it counts for nothing (client-cn.ts).
      out.push(...block.raw);
      return;
    }
    // Re-encoded: a client's own copies go, so that the listener's is the one the handler reads.
    const kept = fields.filter((f) => f.name !== CLIENT_CN_HEADER);
    kept.push(...this.extra);
    out.push(...frameBlock(block.streamId, block.flags & END_STREAM, block.priority, encodeLiterals(kept)));
  }
}
