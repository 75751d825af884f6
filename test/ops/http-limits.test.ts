// Requests Node's HTTP parser refuses, answered as etcd 3.4 (Go's net/http) answers them: the
// header size limit (1 MiB + 4 KiB) and malformed requests, over raw sockets to both servers.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { hasEtcd, startOurServer, startRealEtcd, type Server } from '../helpers/procs.js';

const skip = !hasEtcd() && 'needs /usr/bin/etcd';
let real: Server;
let ours: Server;

before(async () => {
  if (skip !== false) return;
  [real, ours] = await Promise.all([startRealEtcd({ enableV2: false }), startOurServer()]);
});
after(async () => {
  await Promise.all([real?.stop(), ours?.stop()]);
});

/** Sends raw bytes and returns the status line, and the body when the server closes (Go's refusals). */
function raw(s: Server, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const [host, port] = s.endpoint.split(':');
    const sock = connect(Number(port), host!);
    const chunks: Buffer[] = [];
    sock.on('data', (c) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString();
      // A successful answer stays open (keep-alive): its status line is enough.
      if (text.startsWith('HTTP/1.1 200')) sock.destroy();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const status = head.split('\r\n')[0] ?? '';
      resolve(status.startsWith('HTTP/1.1 200') ? status : `${status} | ${head.split('\r\n').filter((l) => /^content-type|^connection/i.test(l)).join(' | ')} | ${body}`);
    });
    sock.setTimeout(10_000, () => reject(new Error('no answer')));
    sock.write(bytes, () => undefined);
  });
}

function withHeader(bytes: number): Buffer {
  const body = '{"key":"YQ=="}';
  return Buffer.from(`POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(bytes)}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
}

test('headers up to 1 MiB are served, past it 431 as Go answers; malformed requests 400', { skip }, async () => {
  const cases: [string, Buffer][] = [
    ['20 kB header (over Node\'s 16 KiB default)', withHeader(20_000)],
    ['just under 1 MiB', withHeader((1 << 20) - 100)],
    ['1 MiB + 5000', withHeader((1 << 20) + 5000)],
    ['3 MB', withHeader(3_000_000)],
    ['header without colon', Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n')],
  ];
  for (const [name, bytes] of cases) {
    const [o, r] = await Promise.all([raw(ours, bytes), raw(real, bytes)]);
    assert.equal(o, r, name);
  }
  assert.equal(await raw(ours, withHeader(3_000_000)), 'HTTP/1.1 431 Request Header Fields Too Large | Content-Type: text/plain; charset=utf-8 | Connection: close | 431 Request Header Fields Too Large');
});
