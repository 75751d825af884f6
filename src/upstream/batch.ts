// Read coalescing: while enough reads are already on their way to an endpoint, the next ones wait
// and go out together as ONE read-only Txn (each Range an op, each read-only Txn a nested txn op).
// One upstream call instead of many is most of the gateway's saving under load: our side pays the
// HTTP/2 stream and message framing once, etcd pays one ReadIndex round and one apply.
//
// Why this keeps etcd's semantics: a Txn reads every op at one revision, after all of the batched
// requests were received and before any of them is answered, so each read is still linearizable
// (and a serializable read may be answered by a linearizable one). Each answer is unwrapped into
// the message etcd gives a lone request, with the Txn's header (etcd fills only the outer header;
// the lone call would have had the same cluster, member, revision and term). If the batch fails
// for any reason but an unreachable endpoint (one request's compacted revision, a permission one
// of them lacks), every request is sent again alone, so each gets its own answer or error;
// reads are safe to repeat.
import type * as grpc from '@grpc/grpc-js';
import * as pb from '../gen/etcdserverpb/rpc.js';
import { isEndpointFailure } from './errors.js';
import type { UnaryChannel, UnaryError } from './unary.js';

/** Reads a batcher lets go out on their own at once, per endpoint; beyond that they queue. */
const CONCURRENT_MAX = 4;
/** etcd refuses a txn with more than --max-txn-ops (default 128) ops at any level. */
const OPS_MAX = 64;
/** Stays well under etcd's default request size limit (1.5 MiB) whatever the members weigh. */
const BATCH_BYTES_MAX = 256 * 1024;

type Read = { kind: 'range'; req: pb.RangeRequest } | { kind: 'txn'; req: pb.TxnRequest };
type Answer = pb.RangeResponse | pb.TxnResponse;

interface Pending {
  readonly read: Read;
  readonly bytes: number;
  readonly token: string | undefined;
  readonly deadline: number;
  readonly cb: (err: UnaryError | null, resp?: Answer) => void;
}

/** About the encoded size of a read (its keys and compared values dominate). */
function approxBytes(ops: readonly pb.RequestOp[], compares: readonly pb.Compare[] = []): number {
  let n = 16;
  for (const c of compares) n += 32 + c.key.length + c.rangeEnd.length + (c.targetUnion?.$case === 'value' ? c.targetUnion.value.length : 0);
  for (const op of ops) {
    const r = op.request;
    if (r?.$case === 'requestRange') n += 32 + r.value.key.length + r.value.rangeEnd.length;
    else if (r?.$case === 'requestTxn') n += approxBytes([...r.value.success, ...r.value.failure], r.value.compare);
    else n += 1024 * 1024; // not a read: never batched (see txnKind), counted as too big to share
  }
  return n;
}

function opOf(r: Read): pb.RequestOp {
  return r.kind === 'range' ? { request: { $case: 'requestRange', value: r.req } } : { request: { $case: 'requestTxn', value: r.req } };
}

/** The answer etcd gives the lone request, out of the batch's op response and header. */
function unwrap(r: Read, op: pb.ResponseOp | undefined, header: pb.ResponseHeader | undefined): Answer | undefined {
  const res = op?.response;
  if (r.kind === 'range' && res?.$case === 'responseRange') return { ...res.value, header };
  if (r.kind === 'txn' && res?.$case === 'responseTxn') return { ...res.value, header };
  return undefined;
}

export class ReadBatcher {
  private inflight = 0;
  private queue: Pending[] = [];
  /** Reads answered out of a shared Txn so far (observability, and the tests' proof of coalescing). */
  coalesced = 0;

  constructor(private readonly channel: UnaryChannel) {}

  range(req: pb.RangeRequest, token: string | undefined, deadline: number, cb: (err: UnaryError | null, resp?: pb.RangeResponse) => void): void {
    this.submit({ read: { kind: 'range', req }, bytes: 32 + req.key.length + req.rangeEnd.length, token, deadline, cb: cb as Pending['cb'] });
  }

  txn(req: pb.TxnRequest, token: string | undefined, deadline: number, cb: (err: UnaryError | null, resp?: pb.TxnResponse) => void): void {
    // With a token, etcd's permission checks matter; whether every etcd version checks the ops of
    // a NESTED txn as it checks top-level ones is not something to bet access control on, so a
    // txn carrying a token is always sent as it came.
    if (token !== undefined) {
      this.inflight++;
      this.channel.call(pb.KVService.txn, req, token, deadline, (err, resp) => {
        this.done();
        cb(err, resp);
      });
      return;
    }
    this.submit({ read: { kind: 'txn', req }, bytes: approxBytes([...req.success, ...req.failure], req.compare), token, deadline, cb: cb as Pending['cb'] });
  }

  private submit(p: Pending): void {
    if (this.inflight < CONCURRENT_MAX && this.queue.length === 0) return this.alone(p);
    this.queue.push(p);
  }

  private done(): void {
    this.inflight--;
    while (this.inflight < CONCURRENT_MAX && this.queue.length > 0) this.sendNext();
  }

  /** The oldest queued read and the queued reads with its token, up to the batch limits. */
  private sendNext(): void {
    const first = this.queue[0]!;
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    let bytes = 0;
    for (const p of this.queue) {
      if (p.token === first.token && batch.length < OPS_MAX && (batch.length === 0 || bytes + p.bytes <= BATCH_BYTES_MAX)) {
        batch.push(p);
        bytes += p.bytes;
      } else {
        rest.push(p);
      }
    }
    this.queue = rest;
    if (batch.length === 1) this.alone(batch[0]!);
    else this.together(batch);
  }

  private alone(p: Pending): void {
    this.inflight++;
    const finish = (err: UnaryError | null, resp?: Answer): void => {
      this.done();
      p.cb(err, resp);
    };
    if (p.read.kind === 'range') this.channel.call(pb.KVService.range, p.read.req, p.token, p.deadline, finish);
    else this.channel.call(pb.KVService.txn, p.read.req, p.token, p.deadline, finish);
  }

  private together(batch: Pending[]): void {
    this.inflight++;
    const deadline = Math.min(...batch.map((p) => p.deadline));
    const req: pb.TxnRequest = { compare: [], success: batch.map((p) => opOf(p.read)), failure: [] };
    this.channel.call(pb.KVService.txn, req, batch[0]!.token, deadline, (err, resp) => {
      if (err === null) {
        const answers = batch.map((p, i) => unwrap(p.read, resp!.responses[i], resp!.header));
        if (answers.every((a) => a !== undefined)) {
          this.coalesced += batch.length;
          this.done();
          batch.forEach((p, i) => p.cb(null, answers[i]));
          return;
        }
      } else if (isEndpointFailure(err as unknown as grpc.ServiceError)) {
        // Every read fails over as it would have alone (the caller's retry loop picks another endpoint).
        this.done();
        for (const p of batch) p.cb(err);
        return;
      }
      // One of them made etcd refuse the whole batch: each is asked alone for its own answer.
      this.inflight--;
      for (const p of batch) this.alone(p);
      while (this.inflight < CONCURRENT_MAX && this.queue.length > 0) this.sendNext();
    });
  }
}
