// Option parsers and option groups shared by commands. A bad value is a usage error (exit 2),
// named by commander with the option.
import { InvalidArgumentError, type Command } from 'commander';
import { parseSize, readRuleFile, Filter, type FilterRule } from '../filter/index.js';

// Decimal digits only: Number() would also take '', ' 2', '0x2' and '1e1'.
const wholeNumber = (v: string): number => (/^\d+$/.test(v) ? Number(v) : NaN);

export const int = (v: string): number => {
  const n = wholeNumber(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

export const count = (v: string): number => {
  const n = wholeNumber(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number');
  return n;
};

export const size = (v: string): number => {
  try {
    return parseSize(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/**
 * --include/--exclude (and their -from forms, which act in command-line order, as rsync's do),
 * --min-size/--max-size; returns what builds the Filter once the options are parsed.
 */
export function filterOptions(cmd: Command): (opts: { minSize?: number; maxSize?: number }) => Filter | undefined {
  const rules: FilterRule[] = [];
  const rule = (action: FilterRule['action']) => (pattern: string) => void rules.push({ action, pattern });
  const ruleFile = (action: FilterRule['action']) => (file: string) => {
    try {
      rules.push(...readRuleFile(file, action));
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
  cmd
    .option(
      '--include <pattern>',
      'rsync-style pattern of entries to keep (repeatable; first match wins)',
      rule('include'),
    )
    .option('--exclude <pattern>', 'rsync-style pattern of entries to leave out (repeatable)', rule('exclude'))
    .option('--include-from <file>', 'include patterns, one per line', ruleFile('include'))
    .option('--exclude-from <file>', 'exclude patterns, one per line', ruleFile('exclude'))
    .option('--min-size <size>', 'leave out files smaller than this (suffixes K, M, G, T)', size)
    .option('--max-size <size>', 'leave out files larger than this', size);
  return (opts) => {
    const filter = new Filter({ rules, minSize: opts.minSize, maxSize: opts.maxSize });
    return filter.isEmpty ? undefined : filter;
  };
}
