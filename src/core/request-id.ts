// etcd's request ID generator (pkg/idutil): the member ID's low 16 bits, then 40 bits of
// milliseconds at start-up, then an 8-bit counter, incremented as one 48-bit suffix.

const SUFFIX_BITS = 48n;
const COUNT_BITS = 8n;
const TIME_BITS = 40n;

export class RequestIdGenerator {
  private readonly prefix: bigint;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & 0xffffn) << SUFFIX_BITS;
    this.suffix = (BigInt(Math.floor(nowMs)) & ((1n << TIME_BITS) - 1n)) << COUNT_BITS;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & ((1n << SUFFIX_BITS) - 1n);
    return this.prefix | this.suffix;
  }
}
