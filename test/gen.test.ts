// src/gen is generated from proto/ and never edited by hand: regenerate it into a temporary
// folder and require byte-identical output.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from './helpers/procs.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test('src/gen matches what scripts/gen-proto.mjs generates from proto/', () => {
  const out = mkdtempSync(join(tmpdir(), 'gen-'));
  try {
    execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts/gen-proto.mjs'), out], { stdio: 'pipe' });
    const want = join(PROJECT_ROOT, 'src/gen');
    const a = files(want).map((f) => relative(want, f)).sort();
    const b = files(out).map((f) => relative(out, f)).sort();
    assert.deepEqual(b, a);
    for (const f of a) assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(want, f), 'utf8'), f);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
