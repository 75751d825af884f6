// What a write is charged against --quota-backend-bytes (etcd 3.4's costs), and the flag's reading.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PutRequest, RequestOp, TxnRequest } from '../../src/gen/etcdserverpb/rpc.js';
import { DEFAULT_QUOTA_BYTES, fitsQuota, putCost, quotaBytes, txnCost } from '../../src/core/quota.js';

const put = (k: string, v: string): RequestOp => RequestOp.fromPartial({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: Buffer.from(k), value: Buffer.from(v) }) } });

test('costs: key + value + 256 per put; a txn costs its larger branch; reads and deletes nothing', () => {
  assert.equal(putCost(PutRequest.fromPartial({ key: Buffer.from('abc'), value: Buffer.alloc(1000) })), 1259);
  const del = RequestOp.fromPartial({ request: { $case: 'requestDeleteRange', value: { key: Buffer.from('a') } } });
  const t = TxnRequest.fromPartial({ success: [put('a', 'xx'), del], failure: [put('b', 'y'), put('c', 'z')] });
  assert.equal(txnCost(t), Math.max(256 + 3, 2 * (256 + 2)));
  assert.equal(txnCost(TxnRequest.fromPartial({ success: [del] })), 0);
});

test('quota flag: 0 is 2 GiB, negative is none; a write fits while size + cost stays under it', () => {
  assert.equal(quotaBytes(0), DEFAULT_QUOTA_BYTES);
  assert.equal(quotaBytes(-1), Infinity);
  assert.equal(quotaBytes(1 << 20), 1 << 20);
  assert.equal(fitsQuota(900, 99, 1000), true);
  assert.equal(fitsQuota(900, 100, 1000), false);
});
