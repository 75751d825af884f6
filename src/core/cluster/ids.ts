// Member and cluster IDs derived as etcd derives them, so a node started with etcd's flags gets
// etcd's IDs (defaults: member 8e9e05c52164694d, cluster cdf818194e3a8c32).
import { createHash } from 'node:crypto';

export function memberId(peerUrls: readonly string[], clusterToken: string): bigint {
  const joined = [...peerUrls].sort().join('') + clusterToken;
  return createHash('sha1').update(joined).digest().readBigUInt64BE(0);
}

export function clusterId(memberIds: readonly bigint[]): bigint {
  const ids = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}
