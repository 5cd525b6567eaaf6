// The filter stage's public surface: which scanned entries a run leaves out, with rsync's
// --include/--exclude/--exclude-from/--min-size/--max-size semantics (see rules.ts for the
// pattern rules). Filter is pure; readRuleFile is the one helper that reads a file.
import { readFileSync } from 'node:fs';
import type { Entry } from '../model/entry.js';
import { compileRule, parseRuleLines, type CompiledRule, type FilterAction, type FilterRule } from './rules.js';

export { parseRuleLines, parseSize } from './rules.js';
export type { FilterAction, FilterRule } from './rules.js';

export interface FilterOptions {
  /** In order: the first rule that matches an entry decides; an entry no rule matches is kept. */
  rules?: FilterRule[];
  /** Regular files smaller than this many bytes are excluded (rsync --min-size). */
  minSize?: number;
  /** Regular files larger than this many bytes are excluded (rsync --max-size). */
  maxSize?: number;
}

export class Filter {
  /** True when nothing can be excluded: no rules and no size limits. */
  readonly isEmpty: boolean;
  readonly #rules: CompiledRule[];
  readonly #minSize: number;
  readonly #maxSize: number;

  /** Throws TypeError for a malformed rule or size limit. */
  constructor(options: FilterOptions = {}) {
    const { rules = [], minSize, maxSize } = options;
    if (!Array.isArray(rules)) throw new TypeError('filter: rules must be an array');
    this.#rules = rules.map(compileRule);
    this.#minSize = sizeLimit('minSize', minSize) ?? 0;
    this.#maxSize = sizeLimit('maxSize', maxSize) ?? Infinity;
    this.isEmpty = this.#rules.length === 0 && minSize === undefined && maxSize === undefined;
  }

  /**
   * True if the entry is excluded. For a directory, exclusion means its whole subtree is skipped:
   * the scan must not descend (rsync never looks inside an excluded directory, so a rule cannot
   * bring back anything below one). The root (empty path) is never excluded. `bySize: false`
   * applies the rules alone, as rsync's --delete does: size limits only choose what is copied.
   */
  excludes(entry: Pick<Entry, 'path' | 'type' | 'size'>, bySize = true): boolean {
    if (entry.path.length === 0) return false;
    if (bySize && entry.type === 'file' && (entry.size < this.#minSize || entry.size > this.#maxSize)) return true;
    if (this.#rules.length === 0) return false;
    const path = entry.path.toString('latin1');
    const isDir = entry.type === 'dir';
    for (const rule of this.#rules) if (rule.matches(path, isDir)) return !rule.include;
    return false;
  }
}

function sizeLimit(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`filter: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/**
 * The rules of an --exclude-from (action 'exclude') or --include-from (action 'include') file,
 * read as bytes and parsed by parseRuleLines. Throws the fs error if the file cannot be read, and
 * a TypeError naming the file for a line parseRuleLines rejects.
 */
export function readRuleFile(path: string, action: FilterAction): FilterRule[] {
  const bytes = readFileSync(path);
  try {
    return parseRuleLines(bytes, action);
  } catch (err) {
    if (err instanceof TypeError) throw new TypeError(`${path}: ${err.message}`);
    throw err;
  }
}
