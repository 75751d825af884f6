// Lease keep-alives to the upstream over ONE LeaseKeepAlive stream: every caller's request for a
// lease joins the request already in flight for it (one upstream message per lease at a time), and
// answers are matched back by lease ID. A keep-alive is idempotent, so a broken stream is simply
// reopened (on the next endpoint) and the requests in flight are sent again.
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { StatusError } from '../backend/errors.js';
import { LeaseKeepAliveRequest, type LeaseKeepAliveResponse } from '../gen/etcdserverpb/rpc.js';
import { isEndpointFailure, toBackendError } from './errors.js';
import { requireLeader, type EndpointPool } from './pool.js';
import { Metadata } from '@grpc/grpc-js';

interface Waiter {
  resolve(r: LeaseKeepAliveResponse): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class LeaseKeepAliveMux {
  private stream: grpc.ClientDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse> | undefined;
  private readonly pending = new Map<bigint, Waiter[]>();
  /** Upstream keep-alive messages sent (requests coalesced per lease send one). */
  sent = 0;

  constructor(private readonly pool: EndpointPool, private readonly timeoutMs: number) {}

  keepAlive(id: bigint): Promise<LeaseKeepAliveResponse> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.drop(id, waiter);
          reject(new StatusError(status.DEADLINE_EXCEEDED, 'context deadline exceeded'));
        }, this.timeoutMs),
      };
      const waiters = this.pending.get(id);
      if (waiters !== undefined) {
        waiters.push(waiter);
        return;
      }
      this.pending.set(id, [waiter]);
      this.send(id);
    });
  }

  private drop(id: bigint, w: Waiter): void {
    const ws = this.pending.get(id);
    if (ws === undefined) return;
    const i = ws.indexOf(w);
    if (i >= 0) ws.splice(i, 1);
    if (ws.length === 0) this.pending.delete(id);
  }

  private send(id: bigint): void {
    this.sent++;
    this.open().write(LeaseKeepAliveRequest.fromPartial({ ID: id }));
  }

  private open(): grpc.ClientDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
    if (this.stream !== undefined) return this.stream;
    const ep = this.pool.pick();
    const s = ep.lease.leaseKeepAlive(requireLeader(new Metadata()));
    this.stream = s;
    s.on('data', (r: LeaseKeepAliveResponse) => {
      this.pool.markUp(ep);
      const ws = this.pending.get(r.ID);
      this.pending.delete(r.ID);
      for (const w of ws ?? []) {
        clearTimeout(w.timer);
        w.resolve(r);
      }
    });
    const broken = (e: unknown): void => {
      if (this.stream !== s) return;
      this.stream = undefined;
      if (isEndpointFailure(e)) {
        this.pool.markDown(ep, (e as grpc.ServiceError).details);
        // Idempotent: ask again on a fresh stream (the waiters' own deadlines still bound them).
        if (this.pending.size > 0) setTimeout(() => { for (const id of this.pending.keys()) this.send(id); }, 100).unref();
        return;
      }
      const err = toBackendError(e);
      for (const ws of this.pending.values()) for (const w of ws) { clearTimeout(w.timer); w.reject(err); }
      this.pending.clear();
    };
    s.on('error', broken);
    s.on('end', () => broken(new StatusError(status.UNAVAILABLE, 'keep-alive stream ended')));
    return s;
  }

  close(): void {
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    for (const ws of this.pending.values()) for (const w of ws) clearTimeout(w.timer);
    this.pending.clear();
  }
}
