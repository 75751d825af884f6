// etcd's v2 store statistics (/v2/stats/store): operation counters of this process, in etcd's field
// order. Like etcd's, they count requests that reached the store (a malformed request rejected at
// the edge is not counted) and start from zero when the process starts.
import type { WriteRequest } from './write.js';

export const STORE_STAT_FIELDS = ['getsSuccess', 'getsFail', 'setsSuccess', 'setsFail', 'deleteSuccess', 'deleteFail',
  'updateSuccess', 'updateFail', 'createSuccess', 'createFail', 'compareAndSwapSuccess', 'compareAndSwapFail',
  'compareAndDeleteSuccess', 'compareAndDeleteFail', 'expireCount', 'watchers'] as const;
export type StoreStatField = (typeof STORE_STAT_FIELDS)[number];

/** The counter pair of a write kind (a POST is a create, as in etcd). */
const WRITE_STATS: Record<Exclude<WriteRequest['kind'], 'expire'>, readonly [StoreStatField, StoreStatField]> = {
  set: ['setsSuccess', 'setsFail'],
  create: ['createSuccess', 'createFail'],
  post: ['createSuccess', 'createFail'],
  update: ['updateSuccess', 'updateFail'],
  compareAndSwap: ['compareAndSwapSuccess', 'compareAndSwapFail'],
  delete: ['deleteSuccess', 'deleteFail'],
  compareAndDelete: ['compareAndDeleteSuccess', 'compareAndDeleteFail'],
};

export class StoreStats {
  private readonly counts = new Map<StoreStatField, number>();

  private inc(f: StoreStatField): void {
    this.counts.set(f, (this.counts.get(f) ?? 0) + 1);
  }

  get(ok: boolean): void {
    this.inc(ok ? 'getsSuccess' : 'getsFail');
  }

  write(kind: WriteRequest['kind'], ok: boolean): void {
    if (kind === 'expire') return; // counted where every expiry is seen: the watch hub
    const [success, fail] = WRITE_STATS[kind];
    this.inc(ok ? success : fail);
  }

  /** etcd's JSON: every field, in order, with the open v2 watches and the expiries seen. */
  toJson(watchers: number, expireCount: number): string {
    const value = (f: StoreStatField): number => (f === 'watchers' ? watchers : f === 'expireCount' ? expireCount : this.counts.get(f) ?? 0);
    return `{${STORE_STAT_FIELDS.map((f) => `"${f}":${value(f)}`).join(',')}}`;
  }
}
