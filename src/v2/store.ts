// The v2 keys API over a V3Backend: get (with listings) and the writes of write.ts, each one txn.
import type { V3Backend } from '../backend/index.js';
import { V2Error } from './errors.js';
import { KeySchema } from './keys.js';
import { headerOf, nodeOf, type V2Header, type V2Result } from './node.js';
import { isRoot } from './path.js';
import { listDir, readPath, subtreeDepth, walkError } from './read.js';
import { needsSubtree, planWrite, type WriteRequest } from './write.js';

/** Retries of a write whose guarded txn lost a race; then 300 is returned. */
export const WRITE_ATTEMPTS_MAX = 32;

export interface GetRequest {
  readonly path: string;
  readonly recursive: boolean;
  /** Listings are always sorted (v2 leaves unsorted order unspecified). */
  readonly sorted: boolean;
}

export class V2Store {
  readonly keys: KeySchema;
  constructor(private readonly backend: V3Backend, prefix?: string) {
    this.keys = new KeySchema(prefix);
  }

  async get(req: GetRequest): Promise<V2Result> {
    const s = await readPath(this.backend, this.keys, req.path);
    const err = walkError(s);
    if (err) throw err;
    const base = isRoot(req.path) ? { key: '/', dir: true, createdIndex: 0, modifiedIndex: 0 } : nodeOf(s.target)!;
    if (!base.dir) return { event: { action: 'get', node: base }, status: 200, header: s.header };
    const nodes = await listDir(this.backend, this.keys, req.path, s.header.index, req.recursive);
    const node = nodes.length > 0 ? { ...base, nodes } : base;
    return { event: { action: 'get', node }, status: 200, header: s.header };
  }

  async write(req: WriteRequest): Promise<V2Result> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS_MAX; attempt++) {
      const s = await readPath(this.backend, this.keys, req.path);
      const depth = needsSubtree(req, s.target) ? await subtreeDepth(this.backend, this.keys, req.path, s.header.index) : 0;
      const plan = planWrite(this.keys, req, s, { depth });
      if (plan instanceof V2Error) throw plan;
      const resp = await this.backend.txn({ compare: [...plan.compares], success: [...plan.ops], failure: [] });
      if (!resp.succeeded) continue;
      const header = headerOf(resp.header);
      return { event: plan.event(header.index), status: plan.status, header };
    }
    throw new V2Error(300, 'v2: too many concurrent changes, write not applied', 0);
  }

  /** The current header (for answers that did not reach the store, e.g. validation errors). */
  async header(): Promise<V2Header> {
    const resp = await this.backend.txn({ compare: [], success: [], failure: [] });
    return headerOf(resp.header);
  }
}
