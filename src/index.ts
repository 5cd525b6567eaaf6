// stripemover's public library API.
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
} from './native.js';
export { createXxh64, hashFileJs } from './hash.js';
export type { Hasher } from './hash.js';
