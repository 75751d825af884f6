// --max-v2-long-polls-per-client: a client address past the limit gets 429 with a v2 error body;
// its polls ending frees the slots.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGateway } from '../gateway/harness.js';

test('v2 long polls past --max-v2-long-polls-per-client are refused 429 until one ends', async () => {
  const gw = await startGateway(['--max-v2-long-polls-per-client', '2']);
  try {
    const ac = new AbortController();
    // Two waiting polls (their headers arrive once they are registered).
    const polls = await Promise.all([1, 2].map(() => fetch(`${gw.url}/v2/keys/lp?wait=true`, { signal: ac.signal })));
    for (const p of polls) assert.equal(p.status, 200);
    const third = await fetch(`${gw.url}/v2/keys/lp?wait=true&recursive=true`);
    assert.equal(third.status, 429);
    assert.deepEqual(await third.json(), { errorCode: 300, message: 'Raft Internal Error', cause: 'too many long polls from 127.0.0.1 (--max-v2-long-polls-per-client=2)', index: 0 });
    // Other requests of the client are not limited.
    const put = await fetch(`${gw.url}/v2/keys/lp`, { method: 'PUT', body: 'value=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(put.status, 201);
    // The write ended both polls: slots are free again.
    for (const p of polls) assert.equal(((await p.json()) as { action: string }).action, 'set');
    let again: Response | undefined;
    for (let i = 0; i < 50; i++) {
      again = await fetch(`${gw.url}/v2/keys/lp?wait=true&waitIndex=1`);
      if (again.status !== 429) break;
      await again.body?.cancel();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(again!.status, 200);
    await again!.text();
    ac.abort();
  } finally {
    await gw.close();
  }
});
