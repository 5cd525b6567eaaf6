// Command-line arguments as the bytes the user typed. Node decodes argv as UTF-8, which turns
// a non-UTF-8 file name into U+FFFD and loses it; Linux keeps the originals in /proc/self/cmdline.
import { readFileSync } from 'node:fs';

let raw: Buffer[] | undefined;

function rawArgs(): Buffer[] {
  if (raw) return raw;
  try {
    const parts = readFileSync('/proc/self/cmdline').toString('latin1').split('\0').slice(0, -1);
    // cmdline holds node's own flags too; the user's arguments are the tail process.argv ends with.
    raw = parts.slice(parts.length - (process.argv.length - 1)).map((p) => Buffer.from(p, 'latin1'));
  } catch {
    raw = [];
  }
  return raw;
}

/** The exact bytes of a command-line argument, found by its position in process.argv. */
export function argBytes(arg: string): Buffer {
  const i = process.argv.indexOf(arg);
  const bytes = i > 0 ? rawArgs()[i - 1] : undefined;
  return bytes && bytes.toString('utf8') === arg ? bytes : Buffer.from(arg);
}
