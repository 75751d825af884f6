// The server's V8 flags (main.ts's `#!/usr/bin/env -S node ...` line) reach it from every
// launcher: run as an executable, npm start, the cluster script and the test helpers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { OUR_MAIN, ourNodeFlags, PROJECT_ROOT, startOurServer } from '../helpers/procs.js';

test('main.js names its node flags and runs with them as an executable', () => {
  const flags = ourNodeFlags();
  assert.ok(flags.includes('--max-semi-space-size=64'), flags.join(' '));
  chmodSync(OUR_MAIN, 0o755); // as npm does for a package's bin
  assert.match(execFileSync(OUR_MAIN, ['--version'], { encoding: 'utf8' }), /^etcd-gateway Version: /);
});

test('npm start and scripts/cluster.mjs pass the same flags', () => {
  const flags = ourNodeFlags();
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.start!.includes(`node ${flags.join(' ')} dist/src/main.js`), pkg.scripts.start);
  const cluster = readFileSync(join(PROJECT_ROOT, 'scripts', 'cluster.mjs'), 'utf8');
  assert.ok(cluster.includes(`${flags.map((f) => `'${f}'`).join(', ')}, main,`), 'scripts/cluster.mjs spawns node with the flags');
});

test('a server started by the test helpers runs with the flags', async () => {
  const srv = await startOurServer();
  try {
    const argv = readFileSync(`/proc/${srv.pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(argv.slice(1, 1 + ourNodeFlags().length), ourNodeFlags());
  } finally {
    await srv.stop();
  }
});
