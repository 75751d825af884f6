// The peer wire format: every message type round-trips field for field, including the traffic a
// real raft election and replication produce; malformed bodies are refused whole. Stream framing:
// frames come out whole and in order however the byte stream is cut into chunks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CodecError, decodeBatch, encodeBatch, encodeFrame, FrameDecoder, LINK_HEARTBEAT, MAX_FRAME_BYTES } from '../../src/core/rafthttp/codec.js';
import type { Message } from '../../src/core/raft/index.js';
import { TestNet } from '../raft/harness.js';

const e = (term: number, index: number, data: string, type: 'normal' | 'confChange' = 'normal') =>
  ({ term, index, type, data: new Uint8Array(Buffer.from(data)) });
const env = { from: 0xfedcba9876543210n, to: 2n, term: 2 ** 40 };

const SAMPLES: Message[] = [
  { type: 'vote', ...env, lastIndex: 7, lastTerm: 3, transfer: true },
  { type: 'preVote', ...env, lastIndex: 0, lastTerm: 0, transfer: false },
  { type: 'voteResponse', ...env, reject: true },
  { type: 'preVoteResponse', ...env, reject: false },
  { type: 'append', ...env, prevIndex: 5, prevTerm: 2, entries: [e(2, 6, 'a'), e(3, 7, '', 'confChange')], commit: 6 },
  { type: 'appendResponse', ...env, index: 9, reject: true, hintIndex: 4, hintTerm: 1 },
  { type: 'heartbeat', ...env, commit: 12, ctx: undefined },
  { type: 'heartbeat', ...env, commit: 12, ctx: 0xffffffffffffffffn },
  { type: 'heartbeatResponse', ...env, ctx: 5n },
  { type: 'snapshot', ...env, snapshot: { meta: { index: 100, term: 4, voters: [1n, 2n], learners: [3n] }, data: new Uint8Array([1, 2, 3]) } },
  { type: 'propose', ...env, term: 0, entries: [e(0, 0, 'x'.repeat(70_000))] },
  { type: 'readIndex', ...env, ctx: 77n },
  { type: 'readIndexResponse', ...env, ctx: 77n, index: 41 },
  { type: 'timeoutNow', ...env },
  { type: 'transferLeader', ...env, transferee: 3n },
];

test('every message type round-trips exactly, alone and in one batch', () => {
  for (const m of SAMPLES) assert.deepStrictEqual(decodeBatch(encodeBatch([m])), [m]);
  assert.deepStrictEqual(decodeBatch(encodeBatch(SAMPLES)), SAMPLES);
  assert.deepStrictEqual(decodeBatch(encodeBatch([])), []);
});

test('the traffic of a real 3-node election and replication round-trips', () => {
  const net = new TestNet([1n, 2n, 3n]);
  net.campaign(1n);
  for (let i = 0; i < 20; i++) net.propose(1n, `v${i}`);
  assert.ok(net.delivered.length > 20);
  assert.deepStrictEqual(decodeBatch(encodeBatch(net.delivered)), net.delivered);
});

test('truncated, padded or garbled bodies are refused', () => {
  const body = encodeBatch(SAMPLES);
  for (const cut of [1, 5, 20, body.length - 1]) assert.throws(() => decodeBatch(body.subarray(0, cut)), CodecError);
  assert.throws(() => decodeBatch(Buffer.concat([body, Buffer.from([0])])), CodecError);
  const bad = Buffer.from(body);
  bad[4] = 200; // the first message's type
  assert.throws(() => decodeBatch(bad), CodecError);
});

test('frames: [u32 length][batch]; a stream cut anywhere decodes to the same messages in order', () => {
  const f = encodeFrame(SAMPLES.slice(0, 4));
  assert.equal(f.readUInt32BE(0), f.length - 4);
  assert.deepStrictEqual(f.subarray(4), encodeBatch(SAMPLES.slice(0, 4)));
  // Frames of 1, 0 (a link heartbeat), several and one big message, back to back.
  const groups = [SAMPLES.slice(0, 1), [], SAMPLES.slice(1, 9), SAMPLES.slice(9)];
  const stream = Buffer.concat(groups.map((g) => (g.length === 0 ? LINK_HEARTBEAT : encodeFrame(g))));
  const expected = groups.flat();
  // Every single cut point, then chunks of several sizes (one byte at a time included).
  for (let cut = 0; cut <= stream.length; cut++) {
    const d = new FrameDecoder();
    assert.deepStrictEqual([...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))], expected, `cut at ${cut}`);
    assert.equal(d.buffered, 0);
  }
  for (const size of [1, 3, 7, 64, 1000, 65_536]) {
    const d = new FrameDecoder();
    const got = [];
    for (let i = 0; i < stream.length; i += size) got.push(...d.push(stream.subarray(i, i + size)));
    assert.deepStrictEqual(got, expected, `chunks of ${size}`);
  }
});

test('frames: a partial frame is held back; a heartbeat alone yields nothing', () => {
  const d = new FrameDecoder();
  assert.deepStrictEqual(d.push(LINK_HEARTBEAT), []);
  const f = encodeFrame([SAMPLES[0]!]);
  assert.deepStrictEqual(d.push(f.subarray(0, 10)), []);
  assert.equal(d.buffered, 10);
  assert.deepStrictEqual(d.push(f.subarray(10)), [SAMPLES[0]]);
  assert.equal(d.buffered, 0);
});

test('frames: an oversized length or a garbled batch makes the stream unusable (CodecError)', () => {
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(MAX_FRAME_BYTES + 1);
  assert.throws(() => new FrameDecoder().push(huge), CodecError);
  const bad = Buffer.from(encodeFrame(SAMPLES.slice(0, 2)));
  bad[8] = 200; // the first message's type (after the frame length and the batch count)
  assert.throws(() => new FrameDecoder().push(bad), CodecError);
  // A frame whose length covers less than its batch: the batch is truncated.
  const short = Buffer.from(encodeFrame(SAMPLES.slice(0, 2)));
  short.writeUInt32BE(short.length - 5);
  assert.throws(() => new FrameDecoder().push(short), CodecError);
});
