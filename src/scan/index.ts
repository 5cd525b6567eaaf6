// The scan stage: a streaming, parallel, byte-exact walk of a tree.
export { scan } from './walk.js';
export type { ScanOptions, ScanError } from './walk.js';
