// Go's two ways of quoting a string that reach a gateway client: strconv.Quote (inside error
// texts such as `unknown value "X" for enum ...`) and encoding/json's string encoder (every
// string in a response body: HTML-safe, U+2028/U+2029 escaped).

const JSON_SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const QUOTE_SHORT: Record<string, string> = {
  '"': '\\"', '\\': '\\\\', '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v',
};

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** What encoding/json escapes or replaces: quote, backslash, controls, HTML's <>&, U+2028/9, surrogates. */
const JSON_SPECIAL = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

/** encoding/json's encoding of a string value, quotes included. */
export function goJsonString(s: string): string {
  // Most strings (keys, values, field names) have nothing to escape: one concatenation, where the
  // loop below makes a string per character.
  if (!JSON_SPECIAL.test(s)) return `"${s}"`;
  let out = '"';
  for (const ch of s) {
    const short = JSON_SHORT[ch];
    if (short !== undefined) {
      out += short;
      continue;
    }
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += `\\u${hex(c, 4)}`;
    else if (c >= 0xd800 && c < 0xe000) out += '\ufffd';
    else out += ch;
  }
  return out + '"';
}

/** strconv.Quote for text made of printable characters and ASCII controls. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const short = QUOTE_SHORT[ch];
    const c = ch.codePointAt(0)!;
    if (short !== undefined) out += short;
    else if (c < 0x20 || c === 0x7f) out += `\\x${hex(c, 2)}`;
    else if (c >= 0x80 && c < 0xa0) out += `\\u${hex(c, 4)}`;
    else out += ch;
  }
  return out + '"';
}
