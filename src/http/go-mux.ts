// The client port's routing as etcd's Go ServeMux does it, where Fastify's router differs: Go
// routes on the decoded path (so an escaped slash, %2F, separates segments: /v2/keys%2Fa is the
// key /a, /v3/kv%2Frange is the Range route), and it answers a path that is not clean (//x,
// /a/../b, /./x) with a 301 to the cleaned one before any route is looked at.
import type { FastifyReply } from 'fastify';
import { cleanPath } from '../v2/path.js';

function split(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** The URL to route: escaped slashes in the path made slashes (Fastify's rewriteUrl). */
export function routedUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!path.includes('%2F') && !path.includes('%2f')) return url;
  return path.replace(/%2f/gi, '/') + (q < 0 ? '' : url.slice(q));
}

/** Go's ServeMux cleaning of a decoded path: a clean path keeps its trailing slash. */
export function muxClean(p: string): string {
  const c = cleanPath(p);
  return p.endsWith('/') && c !== '/' ? c + '/' : c;
}

/**
 * Where Go's mux redirects this request URL: the cleaned path (and the query as it came), or
 * undefined when the path is clean; 'bad' when it is not valid percent-encoding.
 */
export function uncleanTarget(url: string): string | 'bad' | undefined {
  const { path, query } = split(url);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return 'bad';
  }
  const clean = muxClean(decoded);
  return clean === decoded ? undefined : encodeURI(clean) + (query === '' ? '' : `?${query}`);
}

/** Go's http.Redirect with 301: the HTML body only for GET and HEAD. */
export async function redirect(reply: FastifyReply, method: string, target: string): Promise<void> {
  void reply.code(301).header('location', target);
  if (method === 'GET' || method === 'HEAD') {
    await reply.header('content-type', 'text/html; charset=utf-8').send(`<a href="${target}">Moved Permanently</a>.\n\n`);
  } else await reply.send(); // no body and, as Go's http.Redirect for other methods, no Content-Type
}
