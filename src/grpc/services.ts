// etcdserverpb services over grpc-js: each handler decodes (done by the generated service
// definition), calls the backend, and maps errors through status.ts. Nothing else lives here.
import { status as grpcStatus } from '@grpc/grpc-js';
import type * as grpc from '@grpc/grpc-js';
import { isServing } from '../backend/health.js';
import type { CallContext, V3Backend } from '../backend/index.js';
import {
  AuthService, ClusterService, KVService, LeaseService, MaintenanceService, WatchService,
  type AuthServer, type ClusterServer, type KVServer, type LeaseServer, type MaintenanceServer, type WatchResponse, type WatchServer,
} from '../gen/etcdserverpb/rpc.js';
import { HealthCheckResponse_ServingStatus, HealthService, type HealthServer } from '../gen/grpc/health/v1/health.js';
import { callContext } from '../listener/client-cn.js';
import type { OpenStreams } from '../util/open-streams.js';
import { encodePutResponse, encodeRangeResponse } from './fast-encode.js';
import { InstrumentedServer } from './metrics.js';
import { toServiceError, type Logger } from './status.js';

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

function unary<Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>, log: Logger): Unary<Req, Res> {
  return (call, callback) => {
    let p: Promise<Res>;
    try {
      p = fn(call.request, callContext(call));
    } catch (e) {
      callback(toServiceError(e, log));
      return;
    }
    p.then((res) => callback(null, res), (e: unknown) => callback(toServiceError(e, log)));
  };
}

function approxSize(resp: WatchResponse): number {
  let n = 64;
  for (const ev of resp.events) {
    n += 48 + (ev.kv?.key.length ?? 0) + (ev.kv?.value.length ?? 0);
    if (ev.prevKv !== undefined) n += 48 + ev.prevKv.key.length + ev.prevKv.value.length;
  }
  return n;
}

/** `streams`: watch and keepalive streams register there, so a shutdown ends them cleanly (OK status). */
export function addServices(server: grpc.Server, backend: V3Backend, log: Logger, streams: OpenStreams): void {
  const kv: KVServer = {
    range: unary((r, ctx) => backend.range(r, ctx), log),
    put: unary((r, ctx) => backend.put(r, ctx), log),
    deleteRange: unary((r, ctx) => backend.deleteRange(r, ctx), log),
    txn: unary((r, ctx) => backend.txn(r, ctx), log),
    compact: unary((r, ctx) => backend.compact(r, ctx), log),
  };
  // Range and Put answers are serialized by the exact-size encoders (fast-encode.ts).
  const kvService = {
    ...KVService,
    range: { ...KVService.range, responseSerialize: encodeRangeResponse },
    put: { ...KVService.put, responseSerialize: encodePutResponse },
  };
  server.addService(kvService, kv);
  // The hot KV calls are served off their HTTP/2 stream (direct.ts), with the same handlers,
  // decoders and encoders; Compact is rare and stays with grpc-js.
  if (server instanceof InstrumentedServer) {
    const direct = <Req, Res>(def: { path: string; requestDeserialize(b: Buffer): Req; responseSerialize(r: Res): Buffer }, fn: (r: Req, ctx: CallContext) => Promise<Res>): void => {
      server.addDirect({
        path: def.path,
        decode: (b) => def.requestDeserialize(Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
        encode: (r) => def.responseSerialize(r as Res),
        call: (r, ctx) => fn(r as Req, ctx),
        status: (e) => toServiceError(e, log),
      });
    };
    direct(kvService.range, (r, ctx) => backend.range(r, ctx));
    direct(kvService.put, (r, ctx) => backend.put(r, ctx));
    direct(kvService.deleteRange, (r, ctx) => backend.deleteRange(r, ctx));
    direct(kvService.txn, (r, ctx) => backend.txn(r, ctx));
  }

  const watch: WatchServer = {
    watch(call) {
      let backlog = 0;
      let congested = false;
      call.on('drain', () => {
        congested = false;
        backlog = 0;
      });
      const session = backend.watch({
        send(resp) {
          if (call.destroyed || call.writableEnded) return;
          const ok = call.write(resp);
          if (!ok || congested) {
            congested = true;
            backlog += approxSize(resp);
          }
        },
        backlogBytes: () => backlog,
      }, callContext(call));
      call.on('data', (req) => session.request(req));
      const release = streams.add(() => {
        session.close();
        if (!call.writableEnded) call.end();
      });
      // A client half-close does not end an etcd watch stream: events keep flowing until cancel.
      const end = (): void => {
        release();
        session.close();
      };
      call.on('cancelled', end);
      call.on('close', end);
      call.on('error', end);
    },
  };
  server.addService(WatchService, watch);

  const lease: LeaseServer = {
    leaseGrant: unary((r, ctx) => backend.leaseGrant(r, ctx), log),
    leaseRevoke: unary((r, ctx) => backend.leaseRevoke(r, ctx), log),
    leaseTimeToLive: unary((r) => backend.leaseTimeToLive(r), log),
    leaseLeases: unary((r) => backend.leaseLeases(r), log),
    leaseKeepAlive(call) {
      // One response per request, in order; the stream ends when the client half-closes.
      let chain = Promise.resolve();
      const release = streams.add(() => { if (!call.writableEnded) call.end(); });
      call.on('close', release);
      call.on('data', (req) => {
        chain = chain.then(() => backend.leaseKeepAlive(req)).then(
          (resp) => { if (!call.destroyed && !call.writableEnded) call.write(resp); },
          (e: unknown) => { call.destroy(Object.assign(new Error('keepalive failed'), toServiceError(e, log))); },
        );
      });
      call.on('end', () => { void chain.then(() => { if (!call.writableEnded) call.end(); }); });
      call.on('error', () => undefined);
    },
  };
  server.addService(LeaseService, lease);

  const cluster: ClusterServer = {
    memberList: unary((r) => backend.memberList(r), log),
    memberAdd: unary((r) => backend.memberAdd(r), log),
    memberRemove: unary((r) => backend.memberRemove(r), log),
    memberUpdate: unary((r) => backend.memberUpdate(r), log),
    memberPromote: unary((r) => backend.memberPromote(r), log),
  };
  server.addService(ClusterService, cluster);

  const maintenance: MaintenanceServer = {
    alarm: unary((r) => backend.alarm(r), log),
    status: unary((r) => backend.status(r), log),
    defragment: unary((r, ctx) => backend.defragment(r, ctx), log),
    hash: unary((r, ctx) => backend.hash(r, ctx), log),
    hashKv: unary((r, ctx) => backend.hashKV(r, ctx), log),
    moveLeader: unary((r) => backend.moveLeader(r), log),
    snapshot(call) {
      void (async () => {
        try {
          for await (const chunk of backend.snapshot(call.request, callContext(call))) {
            if (call.destroyed) return;
            if (!call.write(chunk)) await new Promise((res) => call.once('drain', res));
          }
          call.end();
        } catch (e) {
          call.destroy(Object.assign(new Error('snapshot failed'), toServiceError(e, log)));
        }
      })();
    },
  };
  server.addService(MaintenanceService, maintenance);

  const auth: AuthServer = {
    authEnable: unary((r, ctx) => backend.authEnable(r, ctx), log),
    authDisable: unary((r, ctx) => backend.authDisable(r, ctx), log),
    authenticate: unary((r) => backend.authenticate(r), log),
    userAdd: unary((r, ctx) => backend.userAdd(r, ctx), log),
    userGet: unary((r, ctx) => backend.userGet(r, ctx), log),
    userList: unary((r, ctx) => backend.userList(r, ctx), log),
    userDelete: unary((r, ctx) => backend.userDelete(r, ctx), log),
    userChangePassword: unary((r, ctx) => backend.userChangePassword(r, ctx), log),
    userGrantRole: unary((r, ctx) => backend.userGrantRole(r, ctx), log),
    userRevokeRole: unary((r, ctx) => backend.userRevokeRole(r, ctx), log),
    roleAdd: unary((r, ctx) => backend.roleAdd(r, ctx), log),
    roleGet: unary((r, ctx) => backend.roleGet(r, ctx), log),
    roleList: unary((r, ctx) => backend.roleList(r, ctx), log),
    roleDelete: unary((r, ctx) => backend.roleDelete(r, ctx), log),
    roleGrantPermission: unary((r, ctx) => backend.roleGrantPermission(r, ctx), log),
    roleRevokePermission: unary((r, ctx) => backend.roleRevokePermission(r, ctx), log),
  };
  server.addService(AuthService, auth);
}

/**
 * grpc.health.v1.Health, registered as etcd does (grpc-go's health server): the server ("")
 * is SERVING while the backend is healthy, NOT_SERVING otherwise; other names are unknown.
 */
export function addHealthService(server: grpc.Server, backend: V3Backend, streams: OpenStreams): void {
  const statusOf = (service: string): HealthCheckResponse_ServingStatus => {
    if (service !== '') return HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
    return isServing(backend.healthFacts()) ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING;
  };
  const health: HealthServer = {
    check: (call, callback) => {
      const status = statusOf(call.request.service);
      if (status === HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN) callback({ code: grpcStatus.NOT_FOUND, details: 'unknown service' });
      else callback(null, { status });
    },
    watch: (call) => {
      call.write({ status: statusOf(call.request.service) });
      // At shutdown a watcher learns NOT_SERVING (as grpc-go's health server's Shutdown tells it), then the stream ends.
      call.on('close', streams.add(() => {
        if (call.writableEnded) return;
        call.write({ status: HealthCheckResponse_ServingStatus.NOT_SERVING });
        call.end();
      }));
    },
  };
  server.addService(HealthService, health);
}
