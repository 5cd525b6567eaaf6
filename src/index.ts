// stripemover's public library API.
export { copy, sync } from './engine/copy.js';
export type {
  CopyOptions,
  SyncOptions,
  CopyHandle,
  CopySummary,
  CopyFailure,
  Progress,
  Change,
} from './engine/copy.js';
export { scan } from './scan/index.js';
export type { ScanOptions, ScanError } from './scan/index.js';
export { Filter, parseSize, parseRuleLines, readRuleFile } from './filter/index.js';
export type { FilterOptions, FilterRule } from './filter/index.js';
export { planUnits, planUnitsAsync, chunkRanges } from './plan/index.js';
export type { PlanOptions, WorkUnit } from './plan/index.js';
export type { Entry, EntryType } from './model/entry.js';
export {
  PATTERN,
  COMP_INIT,
  pieces,
  targetAt,
  stripeRuns,
  resetOsts,
  sameStriping,
  parseLayoutSpec,
  formatLayout,
} from './layout/index.js';
export type { Layout, LayoutComponent, Target, Piece, StripeRun } from './layout/index.js';
export type { LayoutPolicy } from './engine/lustre.js';
export type { ErrorRecord } from './errors.js';
export { native, addonPath, fsConstants } from './native.js';
export type {
  Addon,
  NativeFile,
  NativeStat,
  Extent,
  OpenOptions,
  Xxh64,
  CopyRangeOptions,
  CopyRangeResult,
  HashFileOptions,
  HashFileResult,
  PathLike,
  LustreApi,
  LustreStatus,
} from './native.js';
export { createXxh64, hashFileJs } from './hash.js';
// Backups: a snapshot repository on a POSIX/NAS target (docs/REPOSITORY.md).
export { backup, statDetector, checksumDetector } from './repo/backup.js';
export type { BackupOptions, BackupResult, ChangeDetector } from './repo/backup.js';
export { restore } from './repo/restore.js';
export type { RestoreOptions, RestoreResult } from './repo/restore.js';
export { verify } from './repo/verify.js';
export type { VerifyOptions, VerifyResult, Problem } from './repo/verify.js';
export { prune } from './repo/prune.js';
export type { PruneOptions, PruneResult } from './repo/prune.js';
export type { RetentionPolicy } from './repo/retention.js';
export { diffSnapshots, diffLive } from './repo/diff.js';
export type { Difference } from './repo/diff.js';
export { listSnapshots, snapshotEntries } from './repo/catalog.js';
export type { SnapshotRecord, SnapshotStats } from './repo/repository.js';
export type { ManifestEntry } from './repo/manifest.js';
export { loadConfig } from './repo/config.js';
export type { BackupConfig, BackupJob, ConfigFile, TierConfig } from './repo/config.js';
export type { Hasher } from './hash.js';
