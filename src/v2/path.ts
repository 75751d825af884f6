// v2 key paths: etcd's key normalisation (path.Clean of "/" + key) and the component helpers
// everything else uses. A path is a cleaned string: "/" for the root, else "/a/b" (no trailing /).

/** What path.Clean changes in a rooted path: an empty, "." or ".." component, or a trailing "/". */
const UNCLEAN = /\/\/|\/\.\.?(?:\/|$)|.\/$/;

/** POSIX path.Clean, as Go's path package does it. */
export function cleanPath(p: string): string {
  if (p.startsWith('/') && !UNCLEAN.test(p)) return p; // already clean: most request paths
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/** The v2 key for a decoded request path below /v2/keys. */
export function normalizeKey(raw: string): string {
  return cleanPath('/' + raw);
}

export function isRoot(p: string): boolean {
  return p === '/';
}

/** Path components: "/" -> [], "/a/b" -> ["a", "b"]. */
export function components(p: string): string[] {
  return p === '/' ? [] : p.slice(1).split('/');
}

/** Number of components: the root is 0, "/a" is 1. */
export function depthOf(p: string): number {
  // components(p).length without building the array (every key of every v2 op needs a depth).
  if (p === '/') return 0;
  let n = 1;
  for (let i = 1; i < p.length; i++) if (p.charCodeAt(i) === 0x2f) n++;
  return n;
}

/** Proper ancestors, outermost first, without the root: "/a/b/c" -> ["/a", "/a/b"]. */
export function ancestors(p: string): string[] {
  const parts = components(p);
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push('/' + parts.slice(0, i).join('/'));
  return out;
}

/** The parent directory: "/a/b" -> "/a", "/a" -> "/" (the root is its own parent). */
export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name;
}

/** A hidden node: its last component starts with "_". */
export function isHidden(p: string): boolean {
  const i = p.lastIndexOf('/');
  return p.charAt(i + 1) === '_';
}
