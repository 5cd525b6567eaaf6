// Real files in real directories for the tests, plus the independent tools they are checked against.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';

/** A fresh directory on the machine's disk (O_DIRECT works there), removed after the test. */
export function diskDir(t: Test): string {
  return tempIn(t, process.env.STRIPEMOVER_TEST_DISK ?? '/var/tmp');
}

/**
 * Makes `levels` nested directories of 200-byte names below `root` (21 go past PATH_MAX) by
 * walking down with chdir, so that no path handed to the kernel is long; `atLevel` runs in each,
 * as the working directory, after it is made. Returns to the working directory it started in.
 */
export function makeDeepDirs(root: string, levels: number, atLevel: (level: number) => void = () => {}): void {
  const cwd = process.cwd();
  try {
    process.chdir(root);
    for (let level = 0; level < levels; level++) {
      const name = `${String(level).padStart(2, '0')}${'d'.repeat(198)}`;
      mkdirSync(name);
      process.chdir(name);
      atLevel(level);
    }
  } finally {
    process.chdir(cwd);
  }
}

/** A fresh directory on tmpfs (/dev/shm), removed after the test. */
export function shmDir(t: Test): string {
  return tempIn(t, '/dev/shm');
}

function tempIn(t: Test, parent: string): string {
  const dir = mkdtempSync(path.join(parent, 'stripemover-test-'));
  // rm(1), not fs.rmSync: it removes trees deeper than PATH_MAX.
  t.teardown(() => execFileSync('rm', ['-rf', dir]));
  return dir;
}

export const isRoot = process.getuid?.() === 0;

/** mulberry32: a small seeded PRNG (numbers in [0, 1)) so any failure reproduces from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced. */
export function pseudoRandom(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function writeRandom(file: string | Buffer, size: number, seed = 1): Buffer {
  const data = pseudoRandom(size, seed);
  writeFileSync(file, data);
  return data;
}

/** The digest `xxhsum -H1` prints for a file: the reference every XXH64 here is held to. */
export function xxhsum(file: string): string {
  const out = execFileSync('xxhsum', ['-H1', file], { encoding: 'latin1' });
  return out.split(/\s+/)[0]!;
}

/** Mounts a ramfs (which refuses O_DIRECT) for the fallback tests; root only. */
export function ramfsDir(t: Test): string {
  const dir = mkdtempSync(path.join('/var/tmp', 'stripemover-ramfs-'));
  execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
  t.teardown(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * Mounts a small XFS with reflinks on a loop device (sparse image under /var/tmp) for the tests
 * of block sharing; root and xfsprogs (scripts/setup.sh) needed. Where that cannot be had, no
 * dir and the reason why, for the caller's t.skip.
 */
export function reflinkDir(t: Test): { dir?: string; why?: string } {
  if (process.getuid?.() !== 0) return { why: 'needs root to mount an XFS image' };
  const root = mkdtempSync(path.join('/var/tmp', 'stripemover-xfs-'));
  const image = path.join(root, 'xfs.img');
  const dir = path.join(root, 'mnt');
  mkdirSync(dir);
  t.teardown(() => {
    spawnSync('umount', [dir]);
    rmSync(root, { recursive: true, force: true });
  });
  writeFileSync(image, '');
  truncateSync(image, 512 * 1024 * 1024); // XFS wants 300 MiB at least; sparse, so it costs what is written
  const mkfs = spawnSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image], { encoding: 'utf8' });
  if (mkfs.status !== 0) return { why: `no XFS here: mkfs.xfs ${mkfs.error?.message ?? mkfs.stderr.trim()}` };
  const mount = spawnSync('mount', ['-o', 'loop', image, dir], { encoding: 'utf8' });
  if (mount.status !== 0) return { why: `cannot mount an XFS image: ${mount.stderr.trim()}` };
  return { dir };
}

/** Bytes of a file in extents shared with another file (FIEMAP's shared flag, read by filefrag). */
export function sharedBytesOf(file: string): number {
  const out = execFileSync('filefrag', ['-v', '-b4096', file], { encoding: 'utf8' });
  let blocks = 0;
  for (const line of out.split('\n')) {
    // " 1:  1..  96:  74..  169:  96:  236: shared" — the length is the 4th field.
    const m = /^\s*\d+:\s+\d+\.\.\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+):.*\bshared\b/.exec(line);
    if (m) blocks += Number(m[1]);
  }
  return blocks * 4096;
}
