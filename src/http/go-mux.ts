// The client port's routing as etcd's Go ServeMux does it, where Fastify's router differs: Go
// routes on the decoded path (so an escaped slash, %2F, separates segments: /v2/keys%2Fa is the
// key /a, /v3/kv%2Frange is the Range route), and it answers a path that is not clean (//x,
// /a/../b, /./x) with a 301 to the cleaned one before any route is looked at.
import type { FastifyReply } from 'fastify';
import { cleanPath } from '../v2/path.js';

/** A request URL's path (still escaped) and query (without the '?'). */
export function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** The URL to route: escaped slashes in the path made slashes (Fastify's rewriteUrl, every request). */
export function routedUrl(url: string): string {
  if (!url.includes('%2F') && !url.includes('%2f')) return url; // nearly every request: no copy
  const { path, query } = splitUrl(url);
  return path.replace(/%2f/gi, '/') + (url.length > path.length ? `?${query}` : '');
}

/**
 * Where Go's mux redirects a request whose decoded path is not clean (path.Clean, a trailing
 * slash kept): the cleaned path, escaped, with the query as it came; undefined when it is clean.
 */
export function cleanTarget(decoded: string, query: string): string | undefined {
  const c = cleanPath(decoded);
  const clean = decoded.endsWith('/') && c !== '/' ? c + '/' : c;
  return clean === decoded ? undefined : encodeURI(clean) + (query === '' ? '' : `?${query}`);
}

/** cleanTarget of a whole request URL; undefined also when it is not valid percent-encoding. */
export function uncleanTarget(url: string): string | undefined {
  const { path, query } = splitUrl(url);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined; // answered 400 before routing
  }
  return cleanTarget(decoded, query);
}

/** Go's http.Redirect with 301: the HTML body only for GET and HEAD. */
export async function redirect(reply: FastifyReply, method: string, target: string): Promise<void> {
  void reply.code(301).header('location', target);
  if (method === 'GET' || method === 'HEAD') {
    await reply.header('content-type', 'text/html; charset=utf-8').send(`<a href="${target}">Moved Permanently</a>.\n\n`);
  } else await reply.send(); // no body and, as Go's http.Redirect for other methods, no Content-Type
}
