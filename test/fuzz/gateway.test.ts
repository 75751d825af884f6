// Property-based fuzzing of the gateway inputs (generators and properties: lib.ts; the test: suite.ts).
import { runGatewayFuzz } from './lib.js';
import { fuzzTest } from './suite.js';

fuzzTest('gateway', runGatewayFuzz);
