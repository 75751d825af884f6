// v3lockpb.Lock and v3electionpb.Election over grpc-js. Every failure reaches the client as
// UNKNOWN with the plain message, as etcd's servers answer them.
import type * as grpc from '@grpc/grpc-js';
import type { V3Backend } from '../backend/index.js';
import { ElectionService, type ElectionServer } from '../gen/v3electionpb/v3election.js';
import { LockService, type LockServer } from '../gen/v3lockpb/v3lock.js';
import { campaign, leader, observe, proclaim, resign } from '../recipes/election.js';
import { asCaller, type RecipeBackend } from '../recipes/backend.js';
import { lock, unlock } from '../recipes/lock.js';
import { callContext } from '../listener/client-cn.js';
import { toUnknownError, type Logger } from './status.js';
import type { OpenStreams } from '../util/open-streams.js';

/** An AbortSignal that fires when the client cancels the call. */
function callSignal(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): AbortSignal {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return ac.signal;
}

/** The recipes run with the caller's token, as etcd's servers run clientv3 with the call's context. */
function unary<Req, Res>(backend: V3Backend, fn: (req: Req, signal: AbortSignal, caller: RecipeBackend) => Promise<Res>, log: Logger): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let p: Promise<Res>;
    try {
      p = fn(call.request, callSignal(call), asCaller(backend, callContext(call)));
    } catch (e) {
      callback(toUnknownError(e, log));
      return;
    }
    p.then((res) => callback(null, res), (e: unknown) => callback(toUnknownError(e, log)));
  };
}

/**
 * `streams`: Observe streams register there, so a shutdown ends them (OK status). A Lock or
 * Campaign call still blocked at shutdown is an in-flight unary call: it gets the drain time.
 */
export function addRecipeServices(server: grpc.Server, backend: V3Backend, log: Logger, streams: OpenStreams): void {
  const lockServer: LockServer = {
    lock: unary(backend, (r, s, b) => lock(b, r, s), log),
    unlock: unary(backend, (r, _s, b) => unlock(b, r), log),
  };
  server.addService(LockService, lockServer);

  const election: ElectionServer = {
    campaign: unary(backend, (r, s, b) => campaign(b, r, s), log),
    proclaim: unary(backend, (r, _s, b) => proclaim(b, r), log),
    leader: unary(backend, (r, _s, b) => leader(b, r), log),
    resign: unary(backend, (r, _s, b) => resign(b, r), log),
    observe(call) {
      const shutdown = new AbortController();
      const release = streams.add(() => shutdown.abort());
      const signal = AbortSignal.any([callSignal(call), shutdown.signal]);
      void (async () => {
        try {
          for await (const resp of observe(asCaller(backend, callContext(call)), call.request, signal)) {
            if (call.destroyed) return;
            call.write(resp);
          }
          call.end();
        } catch (e) {
          if (shutdown.signal.aborted) call.end();
          else if (!signal.aborted) call.destroy(Object.assign(new Error('observe failed'), toUnknownError(e, log)));
        } finally {
          release();
        }
      })();
    },
  };
  server.addService(ElectionService, election);
}
