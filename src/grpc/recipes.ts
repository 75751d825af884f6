// v3lockpb.Lock and v3electionpb.Election over grpc-js. Every failure reaches the client as
// UNKNOWN with the plain message, as etcd's servers answer them.
import type * as grpc from '@grpc/grpc-js';
import type { V3Backend } from '../backend/index.js';
import { ElectionService, type ElectionServer } from '../gen/v3electionpb/v3election.js';
import { LockService, type LockServer } from '../gen/v3lockpb/v3lock.js';
import { campaign, leader, observe, proclaim, resign } from '../recipes/election.js';
import { lock, unlock } from '../recipes/lock.js';
import type { OpenStreams } from '../util/open-streams.js';
import { toUnknownError, type Logger } from './status.js';

/** An AbortSignal that fires when the client cancels the call or the server shuts down
 * (`shutdown` tells which); `release` unregisters it once the call is over. */
function callSignal(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, streams: OpenStreams,
): { signal: AbortSignal; shutdown: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const shutdown = new AbortController();
  call.on('cancelled', () => ac.abort());
  const release = streams.add(() => {
    shutdown.abort();
    ac.abort();
  });
  return { signal: ac.signal, shutdown: shutdown.signal, release };
}

function unary<Req, Res>(fn: (req: Req, signal: AbortSignal) => Promise<Res>, log: Logger, streams: OpenStreams): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const { signal, release } = callSignal(call, streams);
    let p: Promise<Res>;
    try {
      p = fn(call.request, signal);
    } catch (e) {
      release();
      callback(toUnknownError(e, log));
      return;
    }
    p.finally(release).then((res) => callback(null, res), (e: unknown) => callback(toUnknownError(e, log)));
  };
}

/** `streams`: blocked Lock/Campaign calls and Observe streams register there, so a shutdown ends them. */
export function addRecipeServices(server: grpc.Server, backend: V3Backend, log: Logger, streams: OpenStreams): void {
  const lockServer: LockServer = {
    lock: unary((r, s) => lock(backend, r, s), log, streams),
    unlock: unary((r) => unlock(backend, r), log, streams),
  };
  server.addService(LockService, lockServer);

  const election: ElectionServer = {
    campaign: unary((r, s) => campaign(backend, r, s), log, streams),
    proclaim: unary((r) => proclaim(backend, r), log, streams),
    leader: unary((r) => leader(backend, r), log, streams),
    resign: unary((r) => resign(backend, r), log, streams),
    observe(call) {
      const { signal, shutdown, release } = callSignal(call, streams);
      void (async () => {
        try {
          for await (const resp of observe(backend, call.request, signal)) {
            if (call.destroyed) return;
            call.write(resp);
          }
          call.end();
        } catch (e) {
          if (shutdown.aborted) call.end();
          else if (!signal.aborted) call.destroy(Object.assign(new Error('observe failed'), toUnknownError(e, log)));
        } finally {
          release();
        }
      })();
    },
  };
  server.addService(ElectionService, election);
}
