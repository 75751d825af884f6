// v2 error codes as typed values. The v2 core raises V2Error; src/http/v2/errors.ts maps each code
// once to etcd's message, HTTP status and body.

export const v2ErrorCodes = [
  100, 101, 102, 104, 105, 107, 108, 110, 200, 201, 202, 203, 209, 210, 211, 212, 300, 401,
] as const;

export type V2ErrorCode = (typeof v2ErrorCodes)[number];

/** A v2 store or request error: code, cause (a user path or detail, '' = omitted), index. */
export class V2Error extends Error {
  override readonly name = 'V2Error';
  constructor(readonly code: V2ErrorCode, override readonly cause: string = '', readonly index: number = 0) {
    super(`v2 error ${code}${cause === '' ? '' : `: ${cause}`}`);
  }
}

export function isV2Error(e: unknown): e is V2Error {
  return e instanceof V2Error;
}
