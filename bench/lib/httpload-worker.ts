// Worker-thread entry of the HTTP gateway load generator (see ./httpload.ts): open the keep-alive
// connections, report 'ready', wait for 'go' with the window, run, post the result.
import { parentPort, workerData } from 'node:worker_threads';
import type { LoadWindow } from './kvload.js';
import { makePool, runHttpLoad, warmConnections, type HttpLoadOptions } from './httpload.js';

const opts = workerData as HttpLoadOptions;
const port = parentPort;
if (port === null) throw new Error('httpload-worker: not in a worker thread');

const pool = makePool(opts.url, opts.inflight);
try {
  await warmConnections(pool, opts.inflight, opts.workload);
  port.postMessage({ type: 'ready' });
  const window = await new Promise<LoadWindow>((res) => {
    const onMsg = (m: { type: string; window: LoadWindow }): void => {
      if (m.type !== 'go') return;
      port.off('message', onMsg);
      res(m.window);
    };
    port.on('message', onMsg);
  });
  const result = await runHttpLoad(opts, pool, window);
  port.postMessage({ type: 'done', result }, [result.latencies.buffer as ArrayBuffer]);
} catch (e) {
  port.postMessage({ type: 'error', error: e instanceof Error ? e.stack ?? e.message : String(e) });
} finally {
  await pool.close();
}
