// The encoded size of an InternalRequest, as etcd checks it against --max-request-bytes. Puts
// (the only request that carries large values) are sized arithmetically so a big value is not
// encoded a second time just to be measured; everything else is encoded.
import { lenFieldSize, putRequestSize, varintLen } from '../backend/wire-size.js';
import { InternalRequest } from '../gen/serverpb/internal.js';

export function internalRequestSize(req: InternalRequest): number {
  if (req.request?.$case !== 'put') return InternalRequest.encode(req).finish().length;
  const h = req.header;
  let headerBytes = 0;
  if (h !== undefined) {
    if (h.ID !== 0n) headerBytes += 1 + varintLen(h.ID);
    if (h.username !== '') headerBytes += lenFieldSize(1, Buffer.byteLength(h.username));
    if (h.authRevision !== 0n) headerBytes += 1 + varintLen(h.authRevision);
  }
  const header = h === undefined ? 0 : lenFieldSize(2, headerBytes);
  return header + lenFieldSize(1, putRequestSize(req.request.value));
}
