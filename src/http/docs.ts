// The gateway's OpenAPI document on the client port: GET /openapi.json (serialized once) and
// GET /docs, a self-contained page (inline script and style, nothing fetched but /openapi.json)
// listing every route with its request and response schemas, collapsible.
import type { FastifyInstance } from 'fastify';
import { SERVER_VERSION } from '../core/server.js';
import { buildOpenApiDocument, type OpenApiDocument } from '../gateway/openapi.js';
import { httpStatusOf } from './v3gw/errors.js';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

/** The document of this server's gateway: its proto reflection, URL table and error statuses. */
export function gatewayOpenApiDocument(): OpenApiDocument {
  return buildOpenApiDocument({ version: SERVER_VERSION, httpStatusOf });
}

export function docsRoutes(app: FastifyInstance, document: OpenApiDocument): void {
  const json = Buffer.from(JSON.stringify(document));
  const page = Buffer.from(DOCS_PAGE);
  app.get(OPENAPI_PATH, async (_req, reply) => reply.type('application/json').send(json));
  app.get(DOCS_PATH, async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 1.5rem;color:#1d2330}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #dde}
code,.type{font-family:ui-monospace,monospace;font-size:13px}
#intro{color:#445;max-width:60rem}#filter{width:20rem;padding:.3rem;margin:.6rem 0}
details.op{border:1px solid #dde;border-radius:4px;margin:.3rem 0;background:#fafbfd}
details.op>summary{padding:.35rem .6rem;cursor:pointer}details.op>div{padding:.2rem 1rem .8rem}
.method{display:inline-block;min-width:3.2rem;font-weight:600;color:#fff;background:#2f7d4f;border-radius:3px;text-align:center;font-size:12px;margin-right:.4rem}
.method.get{background:#2f5f9d}.badge{font-size:11px;background:#e7e2f5;border-radius:3px;padding:0 .3rem;margin-left:.4rem}
.muted{color:#778}.type{color:#7a3b8f}.desc{color:#556}ul.props{list-style:none;padding-left:1.1rem;margin:.2rem 0}
ul.props li{margin:.15rem 0}li.alias{opacity:.6}h4{margin:.7rem 0 .2rem}.error{color:#a22}
`;

// Plain browser script (no template placeholders, no backticks: it sits in a template literal).
const SCRIPT = `
'use strict';
var doc = null;
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function refName(ref) { return ref.replace('#/components/schemas/', ''); }
function deref(s) {
  var seen = 0;
  while (s && s.$ref && seen++ < 20) s = doc.components.schemas[refName(s.$ref)] || {};
  return s || {};
}
function label(s) {
  if (!s) return 'any';
  if (s.$ref) return refName(s.$ref);
  if (s.anyOf) return s.anyOf.map(label).join(' | ');
  if (s.type === 'array') return label(s.items) + '[]';
  if (s.enum) return s.enum.map(function (v) { return JSON.stringify(v); }).join(' | ');
  return (s.type || 'any') + (s.format ? '<' + s.format + '>' : '');
}
function refTarget(s) { return s.type === 'array' && s.items ? s.items : s; }
function lazyDetails(summaryNodes, fill) {
  var d = el('details');
  var sum = el('summary');
  summaryNodes.forEach(function (n) { sum.appendChild(n); });
  d.appendChild(sum);
  var done = false;
  d.addEventListener('toggle', function () { if (d.open && !done) { done = true; fill(d); } });
  return d;
}
function propLine(name, s) {
  var nodes = [el('code', '', name), document.createTextNode(' '), el('span', 'type', label(s))];
  if (s.writeOnly) nodes.push(el('span', 'badge', 'alias, input only'));
  return nodes;
}
function renderProps(s) {
  var ul = el('ul', 'props');
  var props = s.properties || {};
  Object.keys(props).forEach(function (name) {
    var p = props[name];
    var li = el('li', p.writeOnly ? 'alias' : '');
    var t = refTarget(p);
    if (t.$ref || t.properties) {
      li.appendChild(lazyDetails(propLine(name, p), function (d) {
        if (p.description) d.appendChild(el('div', 'desc', p.description));
        d.appendChild(renderSchema(t));
      }));
    } else {
      propLine(name, p).forEach(function (n) { li.appendChild(n); });
      if (p.description) li.appendChild(el('div', 'desc', p.description));
    }
    ul.appendChild(li);
  });
  return ul;
}
function renderSchema(s) {
  var box = el('div');
  var t = deref(s);
  if (s.$ref) box.appendChild(el('div', 'muted', refName(s.$ref) + (t.description ? ': ' + t.description : '')));
  else if (t.description) box.appendChild(el('div', 'desc', t.description));
  if (t.properties) box.appendChild(renderProps(t));
  else if (t.anyOf && t.anyOf.some(function (a) { return a.$ref || a.properties; })) {
    box.appendChild(el('div', 'muted', 'One of:'));
    var ul = el('ul', 'props');
    t.anyOf.forEach(function (a) { var li = el('li'); li.appendChild(renderSchema(a)); ul.appendChild(li); });
    box.appendChild(ul);
  } else if (!s.$ref) box.appendChild(el('span', 'type', label(t)));
  return box;
}
function renderContent(parent, content) {
  Object.keys(content || {}).forEach(function (type) {
    parent.appendChild(el('div', 'muted', type));
    parent.appendChild(renderSchema(content[type].schema));
  });
}
function renderOp(path, verb, op) {
  var d = el('details', 'op');
  d.id = op.operationId;
  d.setAttribute('data-path', path);
  var sum = el('summary');
  sum.appendChild(el('span', 'method ' + verb, verb.toUpperCase()));
  sum.appendChild(el('code', 'path', path));
  sum.appendChild(el('span', 'muted', '  ' + op.summary));
  if (op['x-streaming']) sum.appendChild(el('span', 'badge', 'stream'));
  d.appendChild(sum);
  var body = el('div');
  body.appendChild(el('p', 'desc', op.description));
  if (op.requestBody) {
    body.appendChild(el('h4', '', 'Request body'));
    body.appendChild(el('div', 'desc', op.requestBody.description));
    renderContent(body, op.requestBody.content);
  }
  Object.keys(op.responses).forEach(function (status) {
    var r = op.responses[status];
    body.appendChild(el('h4', '', 'Response ' + status));
    body.appendChild(el('div', 'desc', r.description));
    renderContent(body, r.content);
  });
  d.appendChild(body);
  return d;
}
function render() {
  document.title = doc.info.title;
  document.getElementById('title').textContent = doc.info.title + ' (' + doc.info.version + ')';
  document.getElementById('intro').textContent = doc.info.description;
  var groups = {};
  var order = (doc.tags || []).map(function (t) { return t.name; });
  Object.keys(doc.paths).forEach(function (path) {
    var item = doc.paths[path];
    Object.keys(item).forEach(function (verb) {
      var op = item[verb];
      var tag = (op.tags && op.tags[0]) || 'other';
      if (order.indexOf(tag) < 0) order.push(tag);
      (groups[tag] = groups[tag] || []).push(renderOp(path, verb, op));
    });
  });
  var routes = document.getElementById('routes');
  order.forEach(function (tag) {
    if (!groups[tag]) return;
    var sec = el('section');
    sec.appendChild(el('h2', '', tag));
    groups[tag].forEach(function (d) { sec.appendChild(d); });
    routes.appendChild(sec);
  });
  document.getElementById('count').textContent = Object.keys(doc.paths).length + ' paths';
  openFromHash();
}
function openFromHash() {
  var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
  if (!target || target.tagName !== 'DETAILS') return;
  target.open = true;
  target.scrollIntoView();
}
window.addEventListener('hashchange', openFromHash);
function applyFilter() {
  var q = document.getElementById('filter').value.toLowerCase();
  Array.prototype.forEach.call(document.querySelectorAll('details.op'), function (d) {
    var text = (d.getAttribute('data-path') + ' ' + d.querySelector('summary').textContent).toLowerCase();
    d.style.display = text.indexOf(q) >= 0 ? '' : 'none';
  });
}
document.getElementById('filter').addEventListener('input', applyFilter);
fetch('/openapi.json').then(function (r) {
  if (!r.ok) throw new Error('HTTP ' + r.status);
  return r.json();
}).then(function (d) { doc = d; render(); }).catch(function (e) {
  var p = document.getElementById('routes');
  p.appendChild(el('p', 'error', 'Could not load /openapi.json: ' + e.message));
});
`;

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>etcd-gateway API</title>
<style>${STYLE}</style>
</head>
<body>
<h1 id="title">etcd-gateway API</h1>
<p id="intro" class="muted">Loading the OpenAPI document...</p>
<p><a href="/openapi.json">openapi.json</a> <span id="count" class="muted"></span></p>
<input id="filter" type="search" placeholder="Filter routes" aria-label="Filter routes">
<main id="routes"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;
