// The replicated state machine of the simulation: a hash chain over every applied entry, so two
// nodes that applied different entries at any index disagree from there on. Snapshots carry it.
import type { Entry } from '../../src/core/raft/index.js';

export class SimApp {
  appliedIndex: number;
  hash: number;

  constructor(snapshotIndex: number, data: Uint8Array) {
    this.appliedIndex = snapshotIndex;
    this.hash = data.length === 0 ? 0 : new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  }

  static entryHash(prev: number, e: Entry): number {
    let h = (prev ^ 0x811c9dc5) >>> 0;
    const mix = (b: number): void => {
      h = Math.imul(h ^ b, 0x01000193) >>> 0;
    };
    mix(e.type === 'normal' ? 1 : 2);
    for (const b of e.data) mix(b);
    mix(e.index & 0xff);
    mix((e.index >>> 8) & 0xff);
    return h;
  }

  apply(e: Entry): void {
    if (e.index !== this.appliedIndex + 1) throw new Error(`app: applying ${e.index} after ${this.appliedIndex}`);
    this.hash = SimApp.entryHash(this.hash, e);
    this.appliedIndex = e.index;
  }

  restore(index: number, data: Uint8Array): void {
    const restored = new SimApp(index, data);
    this.appliedIndex = restored.appliedIndex;
    this.hash = restored.hash;
  }

  snapshotData(): Uint8Array {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, this.hash);
    return out;
  }
}
