// HPACK (RFC 7541), as much as the client port's authority fix (src/listener) and the upstream
// HTTP/2 client (src/upstream/h2.ts) need: a complete decoder (static + dynamic table, table-size
// updates, Huffman) and an encoder that writes literals without indexing, so re-encoded blocks
// never change the receiving decoder's dynamic table.

export class HpackError extends Error {}

export interface HeaderField {
  name: string; // latin1: header bytes round-trip unchanged
  value: string;
  /** Sent as "never indexed" (RFC 7541 6.2.3): re-encoded the same way. */
  neverIndex: boolean;
}

/** RFC 7541 Appendix A. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'],
  [':path', '/index.html'], [':scheme', 'http'], [':scheme', 'https'], [':status', '200'],
  [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'],
  [':status', '404'], [':status', '500'], ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''], ['accept-ranges', ''], ['accept', ''], ['access-control-allow-origin', ''],
  ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''],
  ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''],
  ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''],
  ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''],
  ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Name -> first static index with that name, for the encoder's indexed names. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/** RFC 7541 Appendix B: (code, bit length) for symbols 0..255 and EOS (256). */
// prettier-ignore
const HUFFMAN_CODES = [
  0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28, 0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28,
  0xfffffe8, 28, 0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28, 0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28,
  0xfffffed, 28, 0xfffffee, 28, 0xfffffef, 28, 0xffffff0, 28, 0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28,
  0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28, 0xffffff7, 28, 0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28,
  0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12, 0x1ff9, 13, 0x15, 6, 0xf8, 8, 0x7fa, 11,
  0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11, 0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6,
  0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6, 0x1a, 6, 0x1b, 6, 0x1c, 6, 0x1d, 6,
  0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8, 0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10,
  0x1ffa, 13, 0x21, 6, 0x5d, 7, 0x5e, 7, 0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7,
  0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7, 0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7,
  0x6b, 7, 0x6c, 7, 0x6d, 7, 0x6e, 7, 0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7,
  0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13, 0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6,
  0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5, 0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6,
  0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7, 0x28, 6, 0x29, 6, 0x2a, 6, 0x7, 5,
  0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5, 0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7,
  0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15, 0x7fc, 11, 0x3ffd, 14, 0x1ffd, 13, 0xffffffc, 28,
  0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20, 0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23,
  0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23, 0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23,
  0xffffec, 24, 0xffffed, 24, 0x3fffd7, 22, 0x7fffe0, 23, 0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23,
  0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22, 0x7fffe5, 23, 0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24,
  0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22, 0x3fffdc, 22, 0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21,
  0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24, 0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb, 23, 0x7fffec, 23,
  0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21, 0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23,
  0xfffea, 20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22, 0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23,
  0x3ffffe0, 26, 0x3ffffe1, 26, 0xfffeb, 20, 0x7fff1, 19, 0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25,
  0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde, 27, 0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25,
  0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27, 0x7ffffe1, 27, 0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24,
  0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26, 0xffffffd, 28, 0x7ffffe3, 27, 0x7ffffe4, 27, 0x7ffffe5, 27,
  0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21, 0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3, 23,
  0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25, 0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23,
  0x3ffffeb, 26, 0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26, 0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27,
  0x7ffffeb, 27, 0xffffffe, 28, 0x7ffffec, 27, 0x7ffffed, 27, 0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26,
  0x3fffffff, 30,
];

// Decoding tree: node n has children at tree[2n] (bit 0) and tree[2n+1] (bit 1); a value >= 0 is
// a child node index, -1 - sym is a leaf for symbol sym, 0 marks no child (node 0 is the root,
// never a child).
const HUFFMAN_TREE = (() => {
  const tree: number[] = [0, 0];
  let nodes = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const code = HUFFMAN_CODES[2 * sym]!;
    const bits = HUFFMAN_CODES[2 * sym + 1]!;
    let node = 0;
    for (let b = bits - 1; b >= 0; b--) {
      const slot = 2 * node + ((code >>> b) & 1);
      if (b === 0) {
        tree[slot] = -1 - sym;
      } else {
        if (tree[slot] === 0) {
          tree[slot] = nodes++;
          tree.push(0, 0);
        }
        node = tree[slot]!;
      }
    }
  }
  return Int32Array.from(tree);
})();

/** Decodes a Huffman string (RFC 7541 5.2) to latin1. */
export function huffmanDecode(buf: Buffer): string {
  const out: number[] = [];
  let node = 0;
  let depth = 0; // bits consumed since the last symbol
  let allOnes = true; // those bits were all 1 (the only valid padding: a prefix of EOS)
  for (let i = 0; i < buf.length; i++) {
    const byte = buf[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const next = HUFFMAN_TREE[2 * node + bit]!;
      depth++;
      if (bit === 0) allOnes = false;
      if (next < 0) {
        const sym = -1 - next;
        if (sym === 256) throw new HpackError('huffman: EOS in string');
        out.push(sym);
        node = 0;
        depth = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError('huffman: bad padding');
  return Buffer.from(out).toString('latin1');
}

/** Encodes latin1 text with the Huffman code (used by tests; the rewriter sends raw strings). */
export function huffmanEncode(text: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let nbits = 0;
  for (const byte of Buffer.from(text, 'latin1')) {
    const code = HUFFMAN_CODES[2 * byte]!;
    const bits = HUFFMAN_CODES[2 * byte + 1]!;
    for (let b = bits - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++nbits === 8) {
        out.push(acc);
        acc = 0;
        nbits = 0;
      }
    }
  }
  if (nbits > 0) out.push(((acc << (8 - nbits)) | (0xff >>> nbits)) & 0xff);
  return Buffer.from(out);
}

/** A header block decoder, one per connection direction (it owns the dynamic table). */
export class HpackDecoder {
  /** Oldest first: dynamic index 1 is the last element. */
  private readonly entries: [string, string][] = [];
  private size = 0;
  private maxSize: number;
  private pos = 0;
  private buf: Buffer = Buffer.alloc(0);

  /**
   * maxTableSize: SETTINGS_HEADER_TABLE_SIZE this side announced (4096 by default).
   * maxListSize: a block may not decode to more (RFC 7541 4.1 sizes): one byte can name a 4 KiB
   * table entry, so without a bound a small block could expand to gigabytes.
   */
  constructor(private readonly maxTableSize = 4096, private readonly maxListSize = 1 << 20) {
    this.maxSize = maxTableSize;
  }

  /** The entries' total size as RFC 7541 4.1 counts it. */
  get tableSize(): number {
    return this.size;
  }

  /** The dynamic table, newest first (for tests). */
  dynamicTable(): [string, string][] {
    return [...this.entries].reverse();
  }

  decode(block: Buffer): HeaderField[] {
    this.buf = block;
    this.pos = 0;
    const fields: HeaderField[] = [];
    let listSize = 0;
    const add = (f: HeaderField): void => {
      listSize += f.name.length + f.value.length + 32;
      if (listSize > this.maxListSize) throw new HpackError('header list too large');
      fields.push(f);
    };
    while (this.pos < block.length) {
      const b = block[this.pos]!;
      if (b & 0x80) { // 6.1 indexed field
        const [name, value] = this.lookup(this.int(7));
        add({ name, value, neverIndex: false });
      } else if (b & 0x40) { // 6.2.1 literal with incremental indexing
        const field = this.literal(6, false);
        this.insert(field.name, field.value);
        add(field);
      } else if (b & 0x20) { // 6.3 dynamic table size update: only before the first field
        if (fields.length > 0) throw new HpackError('table size update after a field');
        const size = this.int(5);
        if (size > this.maxTableSize) throw new HpackError('table size update above the limit');
        this.maxSize = size;
        this.evict(0);
      } else { // 6.2.2 without indexing (0000), 6.2.3 never indexed (0001)
        add(this.literal(4, (b & 0x10) !== 0));
      }
    }
    return fields;
  }

  private literal(prefix: number, neverIndex: boolean): HeaderField {
    const index = this.int(prefix);
    const name = index === 0 ? this.str() : this.lookup(index)[0];
    return { name, value: this.str(), neverIndex };
  }

  private lookup(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const entry = this.entries[this.entries.length - (index - STATIC_TABLE.length)];
    if (entry === undefined) throw new HpackError(`index ${index} out of the table`);
    return entry;
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + 32;
    this.evict(entrySize);
    // An entry larger than the table empties it and is not added (RFC 7541 4.4).
    if (entrySize <= this.maxSize) {
      this.entries.push([name, value]);
      this.size += entrySize;
    }
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.entries.length) {
      const [n, v] = this.entries[drop++]!;
      this.size -= n.length + v.length + 32;
    }
    if (drop > 0) this.entries.splice(0, drop);
  }

  /** RFC 7541 5.1 integer with an N-bit prefix. */
  private int(prefix: number): number {
    const max = (1 << prefix) - 1;
    if (this.pos >= this.buf.length) throw new HpackError('truncated integer');
    let value = this.buf[this.pos++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new HpackError('truncated integer');
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
      if (shift > 28) throw new HpackError('integer too large');
    }
    return value;
  }

  /** RFC 7541 5.2 string literal. */
  private str(): string {
    if (this.pos >= this.buf.length) throw new HpackError('truncated string');
    const huffman = (this.buf[this.pos]! & 0x80) !== 0;
    const len = this.int(7);
    if (this.pos + len > this.buf.length) throw new HpackError('truncated string');
    const raw = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return huffman ? huffmanDecode(raw) : raw.toString('latin1');
  }
}

function encodeInt(out: number[], first: number, prefix: number, value: number): void {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function encodeStr(out: number[], text: string): void {
  encodeInt(out, 0, 7, text.length);
  for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
}

/**
 * Encodes fields as literals without indexing (or never indexed, as they came), names by static
 * index where there is one, strings raw: the receiver's dynamic table is never read or changed.
 */
export function encodeLiterals(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const f of fields) {
    const first = f.neverIndex ? 0x10 : 0x00;
    const index = STATIC_NAME_INDEX.get(f.name);
    if (index !== undefined) {
      encodeInt(out, first, 4, index);
    } else {
      out.push(first);
      encodeStr(out, f.name);
    }
    encodeStr(out, f.value);
  }
  return Buffer.from(out);
}
