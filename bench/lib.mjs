// Shared bench helpers: timing, cache dropping, peers run as child processes, medians, tables.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export const GiB = 1 << 30;
export const MiB = 1 << 20;

/** Drops the page cache where the machine allows it (root on Linux); says whether it did. */
export function dropCaches() {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** Seconds taken by fn (sync or async). */
export async function time(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Runs a peer command, failing loudly; returns its stdout. */
export function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'latin1', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

export function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function table(headers, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export const gbps = (bytes, seconds) => (bytes / seconds / 1e9).toFixed(2);
