// Writes the gateway's current OpenAPI document to openapi/etcd-gateway.json (the same document
// GET /openapi.json serves). Run after a build: npx tsc -p . && node openapi/generate.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const { gatewayOpenApiDocument } = await import(new URL('../dist/src/http/docs.js', import.meta.url).href);
const out = fileURLToPath(new URL('./etcd-gateway.json', import.meta.url));
writeFileSync(out, JSON.stringify(gatewayOpenApiDocument(), null, 2) + '\n');
console.log(`wrote ${out}`);
