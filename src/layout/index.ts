export * from './model.js';
export { parseLayoutSpec, formatLayout, patternName } from './spec.js';
