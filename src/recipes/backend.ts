// What the server-side recipes call, bound to the caller: etcd's Lock and Election servers run
// clientv3 with the incoming call's context, so the recipes act with the caller's token (and
// permissions) when auth is on.
import type { CallContext, V3Backend } from '../backend/index.js';

export type RecipeBackend = Pick<V3Backend, 'range' | 'txn' | 'deleteRange' | 'watch' | 'leaseGrant'>;

export function asCaller(backend: V3Backend, ctx: CallContext): RecipeBackend {
  return {
    range: (r) => backend.range(r, ctx),
    txn: (r) => backend.txn(r, ctx),
    deleteRange: (r) => backend.deleteRange(r, ctx),
    watch: (out) => backend.watch(out, ctx),
    leaseGrant: (r) => backend.leaseGrant(r, ctx),
  };
}
