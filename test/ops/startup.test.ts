// A server that cannot start (its client port taken) says why in one fatal log line and exits 1,
// instead of an uncaught exception's stack on stderr.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanEnv, makeTempDir, OUR_MAIN, removeTempDir } from '../helpers/procs.js';

test('a client port in use: one fatal JSON log line naming it, exit status 1', async () => {
  const dir = await makeTempDir('startup-');
  const taken = createServer();
  await new Promise<void>((res) => taken.listen(0, '127.0.0.1', res));
  const port = (taken.address() as { port: number }).port;
  try {
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [OUR_MAIN, '--data-dir', join(dir, 'd'), '--listen-client-urls', url, '--advertise-client-urls', url], { env: cleanEnv() });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    assert.equal(code, 1, stderr);
    const lines = stderr.trim().split('\n');
    const fatal = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.level === 60);
    assert.ok(fatal !== undefined, `no fatal line in: ${stderr}`);
    assert.match(fatal.msg, new RegExp(`cannot start: .*EADDRINUSE.*${port}`));
    assert.ok(!lines.some((l) => l.startsWith('    at ')), 'no bare stack trace');
  } finally {
    taken.close();
    await removeTempDir(dir);
  }
});
