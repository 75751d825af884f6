// A one-watcher stream over any V3Backend, as an async iterator of WatchResponses, ended by an
// AbortSignal: what the server-side recipes (lock, election) wait with.
import type { RecipeBackend } from './backend.js';
import { EtcdError } from '../backend/errors.js';
import { WatchCreateRequest, type WatchResponse } from '../gen/etcdserverpb/rpc.js';

export async function* watchStream(
  backend: RecipeBackend, create: Partial<WatchCreateRequest>, signal: AbortSignal,
): AsyncGenerator<WatchResponse> {
  const queue: WatchResponse[] = [];
  let wake: (() => void) | undefined;
  const session = backend.watch({
    send(resp) {
      queue.push(resp);
      wake?.();
    },
    backlogBytes: () => 0,
  });
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    session.request({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial(create) } });
    for (;;) {
      while (queue.length > 0) {
        const resp = queue.shift()!;
        if (resp.created && !resp.canceled) continue;
        if (resp.canceled) throw new EtcdError(resp.compactRevision !== 0n ? 'compacted' : 'watchCanceled');
        yield resp;
      }
      if (signal.aborted) throw new EtcdError('watchCanceled');
      await new Promise<void>((res) => (wake = res));
      wake = undefined;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    session.close();
  }
}
