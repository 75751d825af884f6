// Worker-thread entry of the KV load generator: connect, report 'ready', wait for 'go' with the
// window, run, post the result (latency buffer transferred, not copied).
import { parentPort, workerData } from 'node:worker_threads';
import { closeClients, connectClients, makeClients, runLoad, type LoadOptions, type LoadWindow } from './kvload.js';

const opts = workerData as LoadOptions;
const port = parentPort;
if (port === null) throw new Error('kvload-worker: not in a worker thread');

const clients = makeClients(opts.endpoint, opts.clients);
try {
  await connectClients(clients);
  port.postMessage({ type: 'ready' });
  const window = await new Promise<LoadWindow>((res) => {
    const onMsg = (m: { type: string; window: LoadWindow }): void => {
      if (m.type !== 'go') return;
      port.off('message', onMsg);
      res(m.window);
    };
    port.on('message', onMsg);
  });
  const result = await runLoad(opts, clients, window);
  port.postMessage({ type: 'done', result }, [result.latencies.buffer as ArrayBuffer]);
} catch (e) {
  port.postMessage({ type: 'error', error: e instanceof Error ? e.stack ?? e.message : String(e) });
} finally {
  closeClients(clients);
}
