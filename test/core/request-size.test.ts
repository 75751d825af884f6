import assert from 'node:assert/strict';
import { test } from 'node:test';
import { internalRequestSize } from '../../src/core/request-size.js';
import { PutRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { InternalRequest } from '../../src/gen/serverpb/internal.js';

test('the arithmetic size of a put equals its encoded size', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const leases = [0n, 1n, 127n, 128n, 2n ** 53n + 1n, 2n ** 63n - 1n, -1n, -(2n ** 63n)];
  const ids = [0n, 1n, 300n, 2n ** 63n + 5n, 2n ** 64n - 1n];
  for (let i = 0; i < 2000; i++) {
    const put = PutRequest.fromPartial({
      key: Buffer.alloc(rnd(3) === 0 ? rnd(300) : rnd(20)),
      value: Buffer.alloc(rnd(4) === 0 ? rnd(70000) : rnd(200)),
      lease: leases[rnd(leases.length)]!, prevKv: rnd(2) === 0, ignoreValue: rnd(2) === 0, ignoreLease: rnd(2) === 0,
    });
    const req: InternalRequest = { header: rnd(5) === 0 ? undefined : { ID: ids[rnd(ids.length)]!, username: ['', 'root', 'ü'.repeat(rnd(80))][rnd(3)]!, authRevision: [0n, 1n, 300n][rnd(3)]! }, request: { $case: 'put', value: put } };
    assert.equal(internalRequestSize(req), InternalRequest.encode(req).finish().length);
  }
});
