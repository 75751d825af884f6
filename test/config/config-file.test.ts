// The binary started with --config-file: it serves where the file says, under the file's name,
// and ignores the command-line flags and ETCD_* variables it was also given (as etcd 3.4 does).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { freePort, makeTempDir, OUR_MAIN, removeTempDir } from '../helpers/procs.js';

test('a config file overrides flags and environment', async (t) => {
  const dir = await makeTempDir('cfg-');
  t.after(() => removeTempDir(dir));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const file = join(dir, 'etcd.conf.yml');
  await writeFile(file, [
    `name: from-file`,
    `data-dir: ${join(dir, 'data')}`,
    `listen-client-urls: ${url}`,
    `advertise-client-urls: ${url}`,
    `max-snapshots: 5`,
    '',
  ].join('\n'));
  const child = spawn(process.execPath, [OUR_MAIN, '--config-file', file, '--name', 'from-flag', '--listen-client-urls', 'http://127.0.0.1:1'], {
    env: { PATH: process.env.PATH ?? '', ETCD_NAME: 'from-env' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  // 'close': the process exited and its stderr is fully read.
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await request(`${url}/v3/cluster/member/list`, { method: 'POST', body: '{}' });
      const body = await res.body.json() as { members: { name: string; clientURLs: string[] }[] };
      assert.equal(body.members[0]!.name, 'from-file');
      assert.deepEqual(body.members[0]!.clientURLs, [url]);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`server did not come up: ${String(e)}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(stderr, /command-line flags and ETCD_\* variables are ignored \(--name --listen-client-urls ETCD_NAME\)/);
  assert.match(stderr, /ignoring keys this server does not support: max-snapshots/);
});
