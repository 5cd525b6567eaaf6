// The planning stage's public surface.
export {
  CHUNK_ALIGNMENT,
  Planner,
  chunkRanges,
  planUnits,
  planUnitsAsync,
  resolvePlanOptions,
  unitKey,
} from './units.js';
export type { BatchUnit, ChunkRange, ChunkUnit, PlanOptions, WorkUnit } from './units.js';
