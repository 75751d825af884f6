// The v2 and v3-gateway differential suites, run again with our server in gateway mode over a
// real 3-member etcd 3.4 cluster (TEST_UPSTREAM=1: test/gateway/harness.ts starts the cluster):
// the same requests, compared with a single real etcd, must get the same answers as in embedded mode.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasEtcd, PROJECT_ROOT } from '../helpers/procs.js';

const SUITES = ['compat/v2-keys.test.js', 'compat/v2-ttl-watch.test.js', 'gateway/compat.test.js'];

test('v2 and v3-gateway compat suites pass in gateway mode (3-member etcd 3.4 upstream)', { skip: !hasEtcd() && 'needs /usr/bin/etcd', timeout: 300_000 }, async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_UPSTREAM: '1' };
  // A nested runner must not report into ours as a subtest.
  delete env.NODE_TEST_CONTEXT;
  const files = SUITES.map((f) => join(PROJECT_ROOT, 'dist', 'test', f));
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...files], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const pass = /^# pass (\d+)$/m.exec(out)?.[1];
  const fail = /^# fail (\d+)$/m.exec(out)?.[1];
  assert.equal(code, 0, `suites failed in gateway mode:\n${out.split('\n').filter((l) => /not ok|error|etcd:|ours:|\+|-/.test(l)).slice(0, 200).join('\n')}`);
  assert.equal(fail, '0');
  assert.ok(Number(pass) >= 270, `expected every case to run, got ${pass} passing`);
});
