// How gRPC connections reach grpc-js, through real connections to listenClient: handed over as
// they are (grpc-js sees the socket: getPeer() is its address) unless their first request needs
// the authority rewriter (grpc-js then reads Node's JS stream shim: getPeer() is 'unknown'); the
// client certificate's CN either way; a client's own CN header never counts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import * as http2 from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { listenClient, type ClientListener } from '../../src/listener/index.js';
import { callCommonName, CLIENT_CN_HEADER } from '../../src/listener/client-cn.js';
import { handOverGrpc, type HandOver } from '../../src/listener/rewrite-stream.js';
import { encodeLiterals, HpackDecoder } from '../../src/util/hpack.js';
import { frame, PREFACE } from '../helpers/h2.js';
import { makeTempDir, removeTempDir } from '../helpers/procs.js';
import { hasOpenssl, makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { TlsFiles } from '../../src/tls/files.js';

const PATH = '/test.Echo/Echo';
const raw = (b: Buffer): Buffer => b;

/** What the handler saw of each call. */
interface Seen { peer: string; cn: string | undefined; authority: string | undefined }
let seen: Seen[] = [];

function echoServer(): grpc.Server {
  const server = new grpc.Server();
  const def: grpc.ServiceDefinition = {
    echo: { path: PATH, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw, originalName: 'echo' },
  };
  server.addService(def, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      seen.push({ peer: call.getPeer(), cn: callCommonName(call), authority: call.getHost() });
      cb(null, call.request);
    },
  });
  return server;
}

async function listen(tls?: Parameters<typeof listenClient>[3]): Promise<{ l: ClientListener; close: () => Promise<void> }> {
  const grpcServer = echoServer();
  const httpServer = createHttpServer();
  const l = await listenClient(new URL(`${tls ? 'https' : 'http'}://127.0.0.1:0`), grpcServer, httpServer, tls);
  return { l, close: async () => { await l.close(); grpcServer.forceShutdown(); } };
}

function grpcCall(client: grpc.Client, md = new grpc.Metadata()): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(PATH, raw, raw, Buffer.from('ping'), md, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

/** A gRPC call by hand on a node:http2 session, which lets a test pick the :authority. */
function h2Call(session: http2.ClientHttp2Session, authority: string, extra: http2.OutgoingHttpHeaders = {}): Promise<{ status: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST', ':path': PATH, ':authority': authority, 'content-type': 'application/grpc', te: 'trailers', ...extra,
    });
    const frame = Buffer.alloc(5 + 4);
    frame.writeUInt32BE(4, 1);
    frame.write('ping', 5);
    req.end(frame);
    const chunks: Buffer[] = [];
    let status: string | undefined;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('trailers', (t) => { status = String(t['grpc-status']); });
    req.on('error', reject);
    req.on('close', () => {
      if (req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`stream reset ${req.rstCode}`));
      else resolve({ status, body: Buffer.concat(chunks).subarray(5) });
    });
  });
}

const PEER = /^127\.0\.0\.1:\d+$/;

test('a grpc-js client is handed over as it is, every call; a CN header it sends counts for nothing', async () => {
  const { l, close } = await listen();
  const client = new grpc.Client(`127.0.0.1:${l.port}`, grpc.credentials.createInsecure());
  seen = [];
  try {
    for (const forged of [undefined, 'root', `${'0'.repeat(32)} root`]) {
      const md = new grpc.Metadata();
      if (forged !== undefined) md.set(CLIENT_CN_HEADER, forged);
      assert.equal((await grpcCall(client, md)).toString(), 'ping');
    }
    assert.equal(seen.length, 3);
    for (const s of seen) {
      assert.match(s.peer, PEER); // grpc-js reads the socket itself, not the rewriter's stream
      assert.equal(s.cn, undefined);
    }
  } finally {
    client.close();
    await close();
  }
});

test('an :authority with a scheme: that connection stays on the rewriter, every call answered, a client CN header dropped', async () => {
  const { l, close } = await listen();
  const session = http2.connect(`http://127.0.0.1:${l.port}`);
  seen = [];
  try {
    const authority = `http://127.0.0.1:${l.port}`;
    for (let i = 0; i < 3; i++) {
      const r = await h2Call(session, authority, { [CLIENT_CN_HEADER]: 'root' });
      assert.deepEqual([r.status, r.body.toString()], ['0', 'ping']);
    }
    // A later call with a plain authority on the same connection: still rewritten, still fine.
    assert.equal((await h2Call(session, `127.0.0.1:${l.port}`)).status, '0');
    assert.deepEqual(seen.map((s) => [s.peer, s.cn, s.authority]), [
      ...Array(3).fill(['unknown', undefined, `127.0.0.1:${l.port}`]), ['unknown', undefined, `127.0.0.1:${l.port}`],
    ]);
  } finally {
    session.close();
    await close();
  }
});

/** handOverGrpc alone on a plain port, with a short decision timeout: how each connection went. */
async function handOverPort(timeoutMs: number): Promise<{ port: number; hows: HandOver[]; close: () => Promise<void> }> {
  const grpcServer = echoServer();
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const hows: HandOver[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.pause();
    handOverGrpc(s, (c) => injector.injectConnection(c), { timeoutMs, done: (how) => hows.push(how) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port, hows, close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      grpcServer.forceShutdown();
    },
  };
}

test('a client that sends no request at first, or a PING first, is put on the rewriter, and served', async () => {
  const { port, hows, close } = await handOverPort(300);
  seen = [];
  const idle = http2.connect(`http://127.0.0.1:${port}`);
  const pinging = http2.connect(`http://127.0.0.1:${port}`);
  try {
    // The PING needs the HTTP/2 server's answer: decided at once, well before the timeout.
    await new Promise((resolve) => pinging.once('connect', resolve));
    await new Promise<void>((resolve, reject) => pinging.ping((err) => (err ? reject(err) : resolve())));
    assert.deepEqual(hows, ['rewriter']);
    await new Promise((resolve) => idle.once('remoteSettings', resolve));
    await sleep(500);
    assert.deepEqual(hows, ['rewriter', 'rewriter']);
    for (const session of [idle, idle, pinging]) assert.equal((await h2Call(session, `127.0.0.1:${port}`)).status, '0');
    assert.deepEqual(seen.map((s) => s.peer), ['unknown', 'unknown', 'unknown']);
    // A grpc-js client calls at once: handed over.
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    await grpcCall(client);
    client.close();
    assert.deepEqual(hows, ['rewriter', 'rewriter', 'socket']);
  } finally {
    idle.close();
    pinging.close();
    await close();
  }
});

/**
 * One gRPC call by a hand-written HTTP/2 client, which acknowledges the server's SETTINGS frames
 * either before its request (as grpc-go and grpc-js do) or only after it (a client racing ahead).
 * Resolves with the response's grpc-status and message body; rejects on GOAWAY or RST_STREAM.
 */
async function rawCall(port: number, ackFirst: boolean): Promise<{ status: string | undefined; body: string }> {
  const sock: Socket = netConnect(port, '127.0.0.1');
  const fields: [string, string][] = [
    [':method', 'POST'], [':scheme', 'http'], [':path', PATH], [':authority', `127.0.0.1:${port}`], ['content-type', 'application/grpc'], ['te', 'trailers'],
  ];
  const request = frame(0x1, 0x4, 1, encodeLiterals(fields.map(([name, value]) => ({ name, value, neverIndex: false }))));
  const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 4, ...Buffer.from('ping')]));
  const ACK = frame(0x4, 0x1, 0, Buffer.alloc(0));
  sock.write(Buffer.concat([PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))]));
  const decoder = new HpackDecoder();
  let buf = Buffer.alloc(0);
  let settingsSeen = 0;
  let status: string | undefined;
  let body = '';
  try {
    return await new Promise((resolve, reject) => {
      sock.on('error', reject);
      sock.on('close', () => reject(new Error('connection closed')));
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const len = buf.readUIntBE(0, 3);
          const [type, flags] = [buf[3]!, buf[4]!];
          const payload = buf.subarray(9, 9 + len);
          buf = buf.subarray(9 + len);
          if (type === 0x7) reject(new Error(`GOAWAY error ${payload.readUInt32BE(4)}`));
          if (type === 0x3) reject(new Error(`RST_STREAM ${payload.readUInt32BE(0)}`));
          if (type === 0x4 && (flags & 0x1) === 0) {
            settingsSeen++;
            // The first SETTINGS is the listener's: answer it before or after the request.
            if (settingsSeen === 1) sock.write(ackFirst ? Buffer.concat([ACK, request, data]) : Buffer.concat([request, data]));
            if (settingsSeen === 1 && !ackFirst) setTimeout(() => sock.write(ACK), 50);
            if (settingsSeen > 1) sock.write(ACK);
          }
          if (type === 0x0) body += payload.subarray(5).toString();
          if (type === 0x1) {
            const fields = decoder.decode(payload);
            status = fields.find((f) => f.name === 'grpc-status')?.value ?? status;
            if (flags & 0x1) resolve({ status, body });
          }
        }
      });
    });
  } finally {
    sock.destroy();
  }
}

test('a raw HTTP/2 client: the listener\'s SETTINGS acknowledged before or after the first request, no connection error', async () => {
  const { l, close } = await listen();
  seen = [];
  try {
    assert.deepEqual(await rawCall(l.port, true), { status: '0', body: 'ping' });
    assert.deepEqual(await rawCall(l.port, false), { status: '0', body: 'ping' });
    // ACK first: handed over. ACK after the request: the ACK still has to be dropped, so the rewriter.
    assert.match(seen[0]!.peer, PEER);
    assert.equal(seen[1]!.peer, 'unknown');
  } finally {
    await close();
  }
});

const tlsSkip = !hasOpenssl() && 'needs /usr/bin/openssl';
let dir: string;
let ca: TestCa;
let serverCert: IssuedCert;
let root: IssuedCert;
before(async () => {
  if (tlsSkip !== false) return;
  dir = await makeTempDir('listener-handover-');
  ca = makeCa(dir);
  serverCert = ca.server('server');
  root = ca.client('root', 'root');
});
after(async () => {
  if (dir !== undefined) await removeTempDir(dir);
});

test('TLS with a verified client certificate: its CN reaches the handler on both paths, a forged one never', { skip: tlsSkip }, async () => {
  const { l, close } = await listen({
    files: new TlsFiles({ certFile: serverCert.cert, keyFile: serverCert.key, trustedCaFile: ca.ca, crlFile: '' }, {}), clientCertAuth: true,
  });
  const creds = { ca: readFileSync(ca.ca), cert: readFileSync(root.cert), key: readFileSync(root.key) };
  seen = [];
  const client = new grpc.Client(`127.0.0.1:${l.port}`, grpc.credentials.createSsl(creds.ca, creds.key, creds.cert));
  const session = http2.connect(`https://127.0.0.1:${l.port}`, { ...creds, ALPNProtocols: ['h2'] });
  try {
    // grpc-js: handed over as it is; the CN comes from the TLS socket (getAuthContext).
    const md = new grpc.Metadata();
    md.set(CLIENT_CN_HEADER, 'alice');
    await grpcCall(client, md);
    await grpcCall(client);
    // A scheme in :authority: on the rewriter, the CN comes from the header the listener adds.
    for (let i = 0; i < 2; i++) assert.equal((await h2Call(session, `https://127.0.0.1:${l.port}`, { [CLIENT_CN_HEADER]: 'alice' })).status, '0');
    assert.equal(seen.length, 4);
    assert.match(seen[0]!.peer, PEER);
    assert.match(seen[1]!.peer, PEER);
    assert.deepEqual(seen.slice(2).map((s) => s.peer), ['unknown', 'unknown']);
    assert.deepEqual(seen.map((s) => s.cn), ['root', 'root', 'root', 'root']);
  } finally {
    client.close();
    session.close();
    await close();
  }
});
