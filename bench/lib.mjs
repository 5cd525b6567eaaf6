// Shared bench helpers: timing, cache dropping, peers run as child processes, medians, tables.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

export const gnuTime = existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['--version']).status === 0;
const rssFile = path.join(os.tmpdir(), `bench-rss-${process.pid}`);

/**
 * Runs argv in cwd under GNU time: its wall time, the time to `sync` after it (what it left for
 * the kernel to write), its peak RSS (the largest single process of its tree; null without GNU
 * time), its stderr. Fails loudly.
 */
export function measureCommand(argv, cwd) {
  const full = gnuTime ? ['/usr/bin/time', '-f', '%M', '-o', rssFile, ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { cwd, encoding: 'utf8', maxBuffer: 256 * MiB });
  const t1 = process.hrtime.bigint();
  execFileSync('sync');
  const t2 = process.hrtime.bigint();
  if (r.status !== 0) {
    const err = (r.stderr || String(r.error ?? '')).trim().split('\n').slice(-5).join('\n');
    throw new Error(`\`${argv.join(' ')}\` exited with ${r.status ?? r.signal}: ${err}`);
  }
  const rssKiB = gnuTime ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1)) : null;
  return { command: Number(t1 - t0) / 1e9, durable: Number(t2 - t0) / 1e9, rssKiB, stderr: r.stderr };
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

/** A small seeded PRNG (mulberry32), so generated data sets are the same on every machine. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

let block; // 64 MiB of random bytes, made once per run if a data set has to be written
export const sharedRandomBlock = () => (block ??= randomFillSync(Buffer.allocUnsafe(64 * MiB)));

/** Makes dir with make() unless a marker beside it says the same spec was completely written. */
export function cachedDataSet(dir, spec, make) {
  const marker = `${dir}.done`; // beside the tree, not in it: the tools would copy it
  try {
    if (readFileSync(marker, 'utf8') === JSON.stringify(spec) && existsSync(dir)) return dir;
  } catch {
    // no marker: (re)make it
  }
  rmSync(marker, { force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  console.error(`creating ${dir} (written once and reused)`);
  make(dir);
  execFileSync('sync');
  writeFileSync(marker, JSON.stringify(spec));
  console.error(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/** count files of 1–64 KiB, perDir to a directory, seeded: bench:copy's small tree. */
export function makeSmallTree(dir, count, perDir) {
  const b = sharedRandomBlock();
  const rand = prng(20260101);
  for (let i = 0; i < count; i++) {
    const d = path.join(dir, `d${String(Math.floor(i / perDir)).padStart(4, '0')}`);
    if (i % perDir === 0) mkdirSync(d);
    const size = 1024 + Math.floor(rand() * (64 * 1024 - 1024 + 1)); // 1 KiB to 64 KiB
    const off = Math.floor(rand() * (b.length - size));
    writeFileSync(path.join(d, `f${String(i % perDir).padStart(2, '0')}.bin`), b.subarray(off, off + size));
  }
}
