// The data of a raft entry proposed by this member: [u64 BE request ID][serverpb.InternalRequest].
// The ID up front lets the proposer find its waiter at apply time without decoding the request.
// A proposal is encoded exactly once, into one buffer of its exact size (a put's value is copied
// into it once, and nothing else of its size is allocated: see util/exact-writer.ts); its size
// (what etcd checks against --max-request-bytes) is read off that encoding.
import { InternalRequest } from '../gen/serverpb/internal.js';
import { encodeExact } from '../util/exact-writer.js';

const ID_BYTES = 8;

export interface Proposal {
  /** The entry's data. */
  readonly data: Buffer;
  /** The encoded InternalRequest's size (the data without the ID). */
  readonly requestBytes: number;
}

export function encodeProposal(req: InternalRequest): Proposal {
  const data = encodeExact(InternalRequest.encode, req, ID_BYTES);
  data.writeBigUInt64BE(req.header?.ID ?? 0n, 0);
  return { data, requestBytes: data.length - ID_BYTES };
}

/** The request ID of an entry's data, or undefined for data no proposal made (a leader's empty entry). */
export function proposalId(data: Uint8Array): bigint | undefined {
  if (data.length < ID_BYTES) return undefined;
  return Buffer.from(data.buffer, data.byteOffset, data.length).readBigUInt64BE(0);
}

export function decodeProposal(data: Uint8Array): InternalRequest {
  return InternalRequest.decode(data.subarray(ID_BYTES));
}

/** A normal entry whose body starts with this byte is a membership change (JSON), not an
 * InternalRequest (a protobuf message never starts with a 0 byte: field number 0 is invalid). */
const CLUSTER_ENTRY = 0;
const MARKER = Buffer.from([CLUSTER_ENTRY]);

/** [u64 BE request ID][marker][JSON of the change]: both framings of a membership change. */
function frameChange(id: bigint, change: unknown, marker: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(change));
  const data = Buffer.allocUnsafe(ID_BYTES + marker.length + json.length);
  data.writeBigUInt64BE(id, 0);
  data.set(marker, ID_BYTES);
  data.set(json, ID_BYTES + marker.length);
  return data;
}

function unframeChange<T>(data: Uint8Array, markerBytes: number): { id: bigint; change: T } {
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  return { id: b.readBigUInt64BE(0), change: JSON.parse(b.subarray(ID_BYTES + markerBytes).toString()) as T };
}

/** A membership change's normal entry data: [u64 BE request ID][0][JSON]. */
export function encodeClusterEntry(id: bigint, change: unknown): Buffer {
  return frameChange(id, change, MARKER);
}

export function isClusterEntry(data: Uint8Array): boolean {
  return data.length > ID_BYTES && data[ID_BYTES] === CLUSTER_ENTRY;
}

export function decodeClusterEntry<T>(data: Uint8Array): T {
  return unframeChange<T>(data, MARKER.length).change;
}

/** A raft conf change's context (the change itself is raft's): [u64 BE request ID][JSON]. */
export function encodeChangeContext(id: bigint, change: unknown): Buffer {
  return frameChange(id, change, new Uint8Array(0));
}

export function decodeChangeContext<T>(ctx: Uint8Array): { id: bigint; change: T } {
  return unframeChange<T>(ctx, 0);
}
