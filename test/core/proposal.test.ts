import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeProposal, encodeProposal, proposalId } from '../../src/core/proposal.js';
import { PutRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { InternalRequest } from '../../src/gen/serverpb/internal.js';

test('a proposal is the request ID then the encoded request, and its size is the encoded size', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const leases = [0n, 1n, 127n, 128n, 2n ** 53n + 1n, 2n ** 63n - 1n, -1n, -(2n ** 63n)];
  const ids = [0n, 1n, 300n, 2n ** 63n + 5n, 2n ** 64n - 1n];
  for (let i = 0; i < 2000; i++) {
    const put = PutRequest.fromPartial({
      key: Buffer.alloc(rnd(3) === 0 ? rnd(300) : rnd(20), i & 0xff),
      // Some bigger than the shared writer keeps, so it is replaced and the next ones still encode.
      value: Buffer.alloc(rnd(4) === 0 ? rnd(70000) : rnd(200), i & 0x7f),
      lease: leases[rnd(leases.length)]!, prevKv: rnd(2) === 0, ignoreValue: rnd(2) === 0, ignoreLease: rnd(2) === 0,
    });
    const id = ids[rnd(ids.length)]!;
    const req: InternalRequest = { header: { ID: id, username: ['', 'root', 'ü'.repeat(rnd(80))][rnd(3)]!, authRevision: [0n, 1n, 300n][rnd(3)]! }, request: { $case: 'put', value: put } };
    const expected = InternalRequest.encode(req).finish();
    const { data, requestBytes } = encodeProposal(req);
    assert.equal(requestBytes, expected.length);
    assert.equal(proposalId(data), id);
    assert.deepEqual(data.subarray(8), Buffer.from(expected));
    assert.deepEqual(decodeProposal(data), req);
  }
});

test('a request that fails to encode leaves the next proposal intact', () => {
  const bad = { header: { ID: 5n, username: '', authRevision: 0n }, request: { $case: 'put', value: { key: 42 } } } as unknown as InternalRequest;
  assert.throws(() => encodeProposal(bad));
  const good: InternalRequest = { header: { ID: 9n, username: '', authRevision: 0n }, request: { $case: 'put', value: PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') }) } };
  const { data } = encodeProposal(good);
  assert.equal(proposalId(data), 9n);
  assert.deepEqual(decodeProposal(data), good);
});

test('data shorter than an ID is no proposal of ours', () => {
  assert.equal(proposalId(new Uint8Array(0)), undefined);
  assert.equal(proposalId(new Uint8Array(7)), undefined);
});
