// etcd's pre-proposal txn checks, table-driven from the spec's cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkTxn } from '../../src/backend/validate.js';
import type { RequestOp, TxnRequest } from '../../src/gen/etcdserverpb/rpc.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const put = (k: string): RequestOp => ({ request: { $case: 'requestPut', value: { key: b(k), value: b('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } });
const del = (k: string, end = ''): RequestOp => ({ request: { $case: 'requestDeleteRange', value: { key: b(k), rangeEnd: b(end), prevKv: false } } });
const txn = (success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({ request: { $case: 'requestTxn', value: { compare: [], success, failure } } });
const t = (success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare: [], success, failure });

const cases: { name: string; txn: TxnRequest; want: string | null }[] = [
  { name: 'two puts of one key', txn: t([put('a'), put('a')]), want: 'duplicateKey' },
  { name: 'puts in success and failure', txn: t([put('a')], [put('a')]), want: null },
  { name: 'put inside a deleted range', txn: t([del('a', 'c'), put('b')]), want: 'duplicateKey' },
  { name: 'put of a deleted single key', txn: t([del('a'), put('a')]), want: 'duplicateKey' },
  { name: 'overlapping deletes', txn: t([del('a', 'c'), del('b', 'd')]), want: null },
  { name: 'nested put equal to an outer put', txn: t([put('a'), txn([put('a')])]), want: 'duplicateKey' },
  { name: 'nested then/else put the same key', txn: t([txn([put('a')], [put('a')])]), want: null },
  { name: 'outer put inside a nested delete', txn: t([put('b'), txn([del('a', 'c')])]), want: 'duplicateKey' },
  { name: 'quirk: delete to "\\x00" is an empty interval', txn: t([put('a'), del('\x00', '\x00')]), want: null },
  { name: 'empty RequestOp', txn: t([{ request: undefined }]), want: 'keyNotFound' },
  { name: 'empty key in an op', txn: t([put('')]), want: 'emptyKey' },
  { name: '129 ops', txn: t(Array.from({ length: 129 }, (_, i) => put(`k${i}`))), want: 'tooManyOps' },
  { name: '128 ops', txn: t(Array.from({ length: 128 }, (_, i) => put(`k${i}`))), want: null },
  { name: 'nested allowance is what the outer level leaves', txn: t([txn(Array.from({ length: 128 }, (_, i) => ({ request: { $case: 'requestRange', value: { key: b(`k${i}`), rangeEnd: b(''), limit: 0n, revision: 0n, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false, countOnly: false, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n } } }) as RequestOp))]), want: 'tooManyOps' },
];

for (const c of cases) {
  test(`checkTxn: ${c.name}`, () => {
    if (c.want === null) assert.doesNotThrow(() => checkTxn(c.txn, 128));
    else assert.throws(() => checkTxn(c.txn, 128), (e: Error & { code?: string }) => e.code === c.want);
  });
}
