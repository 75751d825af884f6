// bytes fields as Go's encoding/json reads them: base64.StdEncoding (padded, standard alphabet,
// CR and LF skipped anywhere), with Go's error text and byte offsets. Node's Buffer.from(s,
// 'base64') accepts unpadded and URL-safe input, which etcd rejects.
import { allocWithRoom } from '../util/headroom.js';

export class Base64Error extends Error {
  override readonly name = 'Base64Error';
  constructor(readonly offset: number) {
    super(`illegal base64 data at input byte ${offset}`);
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int8Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;
const PAD = 0x3d;

function isNewline(c: number | undefined): boolean {
  return c === 0x0a || c === 0x0d;
}

/**
 * Decodes src or throws Base64Error at the offset Go reports. A large value is decoded into a
 * buffer with room around it, where its raft proposal will be encoded (util/headroom.ts).
 */
export function decodeStdBase64(src: Buffer): Buffer {
  const out = allocWithRoom(Math.ceil(src.length / 4) * 3);
  let n = 0;
  let si = 0;
  // Whole quads of alphabet characters decode the same whatever follows; the careful loop below
  // takes over at the first quad holding padding, a newline or a bad byte.
  for (const last = src.length - 4; si <= last; si += 4) {
    const a = DECODE[src[si]!]!;
    const b = DECODE[src[si + 1]!]!;
    const c = DECODE[src[si + 2]!]!;
    const d = DECODE[src[si + 3]!]!;
    if ((a | b | c | d) < 0) break;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[n++] = v >>> 16;
    out[n++] = (v >>> 8) & 0xff;
    out[n++] = v & 0xff;
  }
  for (;;) {
    const q = [0, 0, 0, 0];
    let dlen = 4;
    let j = 0;
    let trailing: number | undefined;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return out.subarray(0, n);
        throw new Base64Error(si - j);
      }
      const c = src[si]!;
      si++;
      const d = DECODE[c]!;
      if (d >= 0) {
        q[j] = d;
        continue;
      }
      if (isNewline(c)) {
        j--;
        continue;
      }
      if (c !== PAD || j < 2) throw new Base64Error(si - 1);
      if (j === 2) {
        while (si < src.length && isNewline(src[si])) si++;
        if (si === src.length) throw new Base64Error(src.length);
        if (src[si] !== PAD) throw new Base64Error(si - 1);
        si++;
      }
      while (si < src.length && isNewline(src[si])) si++;
      if (si < src.length) trailing = si;
      dlen = j;
      break;
    }
    const v = (q[0]! << 18) | (q[1]! << 12) | (q[2]! << 6) | q[3]!;
    if (dlen >= 2) out[n++] = (v >> 16) & 0xff;
    if (dlen >= 3) out[n++] = (v >> 8) & 0xff;
    if (dlen === 4) out[n++] = v & 0xff;
    if (trailing !== undefined) throw new Base64Error(trailing);
    if (dlen < 4) return out.subarray(0, n);
  }
}
