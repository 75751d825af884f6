// Go's url.ParseQuery as etcd's v2 handler sees it: "&"-separated pairs, "+" is a space, a bad
// %-escape or a ";" is an error (its text becomes the cause of v2 error 210), first value wins.

export type FormResult = { readonly ok: true; readonly values: Map<string, string> } | { readonly ok: false; readonly cause: string };

const HEX = /^[0-9a-fA-F]{2}$/;

const ESCAPED = /[%+]/;

function unescape(s: string): string | { error: string } {
  // Most keys and values carry no escape: nothing to decode (the text is already UTF-8 decoded,
  // so re-encoding it byte by byte would give the same string).
  if (!ESCAPED.test(s)) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '%') {
      const h = s.slice(i + 1, i + 3);
      if (!HEX.test(h)) return { error: `invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}` };
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (ch === '+') bytes.push(0x20);
    else bytes.push(...Buffer.from(ch));
  }
  return Buffer.from(bytes).toString();
}

/** Parses pairs into `into` (existing names keep their first value); returns the first error. */
export function parseForm(text: string, into: Map<string, string> = new Map()): FormResult {
  let firstError: string | undefined;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    if (pair.includes(';')) {
      firstError ??= 'invalid semicolon separator in query';
      continue;
    }
    const eq = pair.indexOf('=');
    const k = unescape(eq < 0 ? pair : pair.slice(0, eq));
    if (typeof k !== 'string') { firstError ??= k.error; continue; }
    const v = unescape(eq < 0 ? '' : pair.slice(eq + 1));
    if (typeof v !== 'string') { firstError ??= v.error; continue; }
    if (!into.has(k)) into.set(k, v);
  }
  return firstError === undefined ? { ok: true, values: into } : { ok: false, cause: firstError };
}
