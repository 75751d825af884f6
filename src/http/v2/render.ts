// v2 events as etcd writes them: Go encoding/json field order, omitempty, Go string escaping.
import { goJsonString } from '../../gateway/index.js';
import type { V2Event, V2Node } from '../../v2/index.js';

export function nodeJson(n: V2Node): string {
  const parts: string[] = [];
  if (n.key !== '/') parts.push(`"key":${goJsonString(n.key)}`);
  if (!n.dir && n.value !== undefined) parts.push(`"value":${goJsonString(n.value)}`);
  if (n.dir) parts.push('"dir":true');
  if (n.expiration !== undefined) parts.push(`"expiration":"${n.expiration}"`);
  if (n.ttl !== undefined && n.ttl !== 0) parts.push(`"ttl":${n.ttl}`);
  if (n.nodes && n.nodes.length > 0) parts.push(`"nodes":[${n.nodes.map(nodeJson).join(',')}]`);
  if (n.modifiedIndex !== 0) parts.push(`"modifiedIndex":${n.modifiedIndex}`);
  if (n.createdIndex !== 0) parts.push(`"createdIndex":${n.createdIndex}`);
  return `{${parts.join(',')}}`;
}

const SUPPRESSIBLE = new Set(['set', 'create', 'update', 'compareAndSwap']);

/** The response body; noValueOnSuccess drops node and prevNode of set/create/update/CAS. */
export function eventJson(e: V2Event, noValueOnSuccess = false): string {
  if (noValueOnSuccess && SUPPRESSIBLE.has(e.action)) return `{"action":"${e.action}"}\n`;
  const prev = e.prevNode ? `,"prevNode":${nodeJson(e.prevNode)}` : '';
  return `{"action":"${e.action}","node":${nodeJson(e.node)}${prev}}\n`;
}
