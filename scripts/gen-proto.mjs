// Regenerates src/gen from proto/ with buf + ts-proto (both run offline from node_modules).
// test/gen.test.ts runs this into a temporary folder and fails if src/gen differs.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';

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
