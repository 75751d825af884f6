// Regenerates src/gen from proto/ with buf + ts-proto (both run offline from node_modules).
// test/gen.test.ts runs this into a temporary folder and fails if src/gen differs.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const out = process.argv[2] ? resolve(process.argv[2]) : resolve(root, 'src/gen');
rmSync(out, { recursive: true, force: true });
execFileSync(resolve(root, 'node_modules/.bin/buf'), ['generate', '--output', '.', '--template',
  JSON.stringify({
    version: 'v2',
    plugins: [{
      local: resolve(root, 'node_modules/.bin/protoc-gen-ts_proto'),
      out,
      opt: ['outputServices=grpc-js', 'forceLong=bigint', 'esModuleInterop=true', 'importSuffix=.js',
        'oneof=unions-value', 'outputJsonMethods=false', 'useOptionals=none', 'env=node'],
    }],
  })], { cwd: root, stdio: 'inherit' });

// ts-proto refuses messages nested deeper than 100 levels. etcd accepts a txn nested as deep as
// its op allowance (128, one level per RequestOp + TxnRequest pair), so allow 512 levels: deep
// enough for every txn etcd accepts, still bounded against hostile input.
const DECODE_DEPTH_MAX = 512;
function patch(dir) {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) { patch(p); continue; }
    const src = readFileSync(p, 'utf8');
    writeFileSync(p, src.replaceAll('previousRecursionDepth >= 100', `previousRecursionDepth >= ${DECODE_DEPTH_MAX}`));
  }
}
patch(out);
