// v3lockpb.Lock and v3electionpb.Election over grpc-js. Every failure reaches the client as
// UNKNOWN with the plain message, as etcd's servers answer them.
import type * as grpc from '@grpc/grpc-js';
import type { V3Backend } from '../backend/index.js';
import { ElectionService, type ElectionServer } from '../gen/v3electionpb/v3election.js';
import { LockService, type LockServer } from '../gen/v3lockpb/v3lock.js';
import { campaign, leader, observe, proclaim, resign } from '../recipes/election.js';
import { lock, unlock } from '../recipes/lock.js';
import { toUnknownError, type Logger } from './status.js';

/** An AbortSignal that fires when the client cancels the call. */
function callSignal(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): AbortSignal {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return ac.signal;
}

function unary<Req, Res>(fn: (req: Req, signal: AbortSignal) => Promise<Res>, log: Logger): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let p: Promise<Res>;
    try {
      p = fn(call.request, callSignal(call));
    } catch (e) {
      callback(toUnknownError(e, log));
      return;
    }
    p.then((res) => callback(null, res), (e: unknown) => callback(toUnknownError(e, log)));
  };
}

export function addRecipeServices(server: grpc.Server, backend: V3Backend, log: Logger): void {
  const lockServer: LockServer = {
    lock: unary((r, s) => lock(backend, r, s), log),
    unlock: unary((r) => unlock(backend, r), log),
  };
  server.addService(LockService, lockServer);

  const election: ElectionServer = {
    campaign: unary((r, s) => campaign(backend, r, s), log),
    proclaim: unary((r) => proclaim(backend, r), log),
    leader: unary((r) => leader(backend, r), log),
    resign: unary((r) => resign(backend, r), log),
    observe(call) {
      const signal = callSignal(call);
      void (async () => {
        try {
          for await (const resp of observe(backend, call.request, signal)) {
            if (call.destroyed) return;
            call.write(resp);
          }
          call.end();
        } catch (e) {
          if (!signal.aborted) call.destroy(Object.assign(new Error('observe failed'), toUnknownError(e, log)));
        }
      })();
    },
  };
  server.addService(ElectionService, election);
}
