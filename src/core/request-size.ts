// The encoded size of an InternalRequest, as etcd checks it against --max-request-bytes. Puts
// (the only request that carries large values) are sized arithmetically so a big value is not
// encoded a second time just to be measured; everything else is encoded.
import { lenFieldSize, putRequestSize, varintLen } from '../backend/wire-size.js';
import { InternalRequest } from '../gen/serverpb/internal.js';

export function internalRequestSize(req: InternalRequest): number {
  if (req.request?.$case !== 'put') return InternalRequest.encode(req).finish().length;
  const id = req.header?.ID ?? 0n;
  const header = req.header === undefined ? 0 : lenFieldSize(2, id !== 0n ? 1 + varintLen(id) : 0);
  return header + lenFieldSize(1, putRequestSize(req.request.value));
}
