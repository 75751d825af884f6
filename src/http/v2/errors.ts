// The v2 edge's one error table: each V2ErrorCode to etcd's message and HTTP status (spec 8.2).
import { V2Error, type V2ErrorCode } from '../../v2/index.js';
import { EtcdError } from '../../backend/errors.js';
import { goJsonString } from '../../gateway/index.js';
import { grpcErrors } from '../../grpc/status.js';

const TABLE: Readonly<Record<V2ErrorCode, readonly [message: string, httpStatus: number]>> = {
  100: ['Key not found', 404],
  101: ['Compare failed', 412],
  102: ['Not a file', 403],
  104: ['Not a directory', 400],
  105: ['Key already exists', 412],
  107: ['Root is read only', 400],
  108: ['Directory not empty', 403],
  110: ['The request requires user authentication', 401],
  200: ['Value is Required in POST form', 400],
  201: ['PrevValue is Required in POST form', 400],
  202: ['The given TTL in POST form is not a number', 400],
  203: ['The given index in POST form is not a number', 400],
  209: ['Invalid field', 400],
  210: ['Invalid POST form', 400],
  211: ['Value provided on refresh', 400],
  212: ['A TTL must be provided on refresh', 400],
  300: ['Raft Internal Error', 500],
  401: ['The event in requested index is outdated and cleared', 400],
};

export function httpStatusOf(code: V2ErrorCode): number {
  return TABLE[code][1];
}

/** {"errorCode","message","cause"(omitted when empty),"index"} and a newline, as etcd writes it. */
export function errorBody(e: V2Error): string {
  const cause = e.cause === '' ? '' : `,"cause":${goJsonString(e.cause)}`;
  return `{"errorCode":${e.code},"message":${goJsonString(TABLE[e.code][0])}${cause},"index":${e.index}}\n`;
}

/**
 * Any other failure: 300 with its text as the cause, index 0. A backend error's text is etcd's
 * gRPC message for it: etcd 3.4's v2 over v3 (--experimental-enable-v2v3) gets its errors from
 * the v3 client, e.g. NOSPACE as cause "etcdserver: mvcc: database space exceeded".
 */
export function internalError(e: unknown): V2Error {
  if (e instanceof EtcdError && e.message === e.code && grpcErrors[e.code][1] !== '') return new V2Error(300, grpcErrors[e.code][1], 0);
  return new V2Error(300, e instanceof Error ? e.message : String(e), 0);
}
