// Property-based fuzzing of the v2 inputs (generators and properties: lib.ts; the test: suite.ts).
import { runV2Fuzz } from './lib.js';
import { fuzzTest } from './suite.js';

fuzzTest('v2', runV2Fuzz);
