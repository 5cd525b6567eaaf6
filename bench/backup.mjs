#!/usr/bin/env node
// npm run bench:backup -- [--scale 1] [--changed 0.01] [--trials 3] [--dest DIR] [--fs xfs]
//
// An incremental backup of bench:copy's tree of 100,000 files (1–64 KiB, 1,000 directories)
// with 1% of its files changed, against the seed's snapshot script on the same data:
//   cp -al "$LATEST" "$TARGET" && rsync -az --delete --exclude='*.tmp' --exclude='.Trash*' SRC/ TARGET/
// Both first make a full snapshot (not timed), then the source changes, then each takes its
// incremental snapshot from a cold cache, in turns, `--trials` times (each trial's snapshots
// are removed before the next: every trial starts from the same state). Prints the median time
// (the command alone, and with a `sync` after it: the script leaves its writes to the kernel,
// stripemover's are durable when it exits), peak RSS, and the space the incremental added (du
// of the whole repository after, minus before: hard links are counted once; on XFS, the file
// system's blocks in use). Then a restore of the full snapshot against `cp -a` of the script's.
// --fs xfs puts the backups on an XFS with reflinks, made on a loop device for the run (root and
// xfsprogs needed), the source staying on the disk: there a changed file's copy shares its
// unchanged blocks with the previous snapshot's (cp -al + rsync writes it whole).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MiB, cachedDataSet, dropCaches, makeSmallTree, measureCommand, median, prng, table } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(here);
const { values: opt } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    changed: { type: 'string', default: '0.01' },
    trials: { type: 'string', default: '3' },
    dest: { type: 'string' },
    fs: { type: 'string', default: 'disk' },
  },
});
if (!['disk', 'xfs'].includes(opt.fs)) throw new Error(`--fs: 'disk' or 'xfs', not '${opt.fs}'`);
if (opt.fs === 'xfs' && opt.dest) throw new Error('--fs xfs makes its own file system: no --dest with it');
const scale = Number(opt.scale);
const trials = Number(opt.trials);
const count = Math.max(100, Math.round(100_000 * scale));
const changedShare = Number(opt.changed);
const dataRoot = path.join(here, '.data', 'copy', ...(scale === 1 ? [] : [`scale-${scale}`]));
const small = cachedDataSet(path.join(dataRoot, 'small'), { v: 1, files: count, perDir: 100, seed: 20260101 }, (d) =>
  makeSmallTree(d, count, 100),
);

const work = opt.dest ?? path.join(opt.fs === 'xfs' ? mountXfs() : path.join(here, '.data'), 'backup-work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
// With --fs xfs only the backups go there: the source stays on the disk, as a backup's source is
// on another file system than its NAS (on the same one, stripemover would clone it whole).
const srcHome = opt.fs === 'xfs' ? path.join(here, '.data', 'backup-source') : work;
rmSync(srcHome, { recursive: true, force: true });
mkdirSync(srcHome, { recursive: true });
const src = path.join(srcHome, 'src');
execFileSync('cp', ['-a', small, src]);
const bin = path.join(repo, 'bin', 'stripemover.js');
const smRepo = path.join(work, 'sm-repo');
const seedRoot = path.join(work, 'seed-backups');

/** A sparse image under bench/.data, formatted XFS with reflinks and loop-mounted until exit. */
function mountXfs() {
  const image = path.join(here, '.data', 'xfs.img');
  const mnt = path.join(here, '.data', 'xfs');
  spawnSync('umount', [mnt]); // left by an interrupted run
  rmSync(image, { force: true });
  mkdirSync(mnt, { recursive: true });
  writeFileSync(image, '');
  truncateSync(image, 24 * 1024 ** 3); // data, two full snapshots and the incrementals
  execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image]);
  execFileSync('mount', ['-o', 'loop', image, mnt]);
  process.on('exit', () => {
    spawnSync('umount', [mnt]);
    rmSync(image, { force: true });
  });
  return mnt;
}

const du = (dir) => Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]) * 1024;
const timed = (cmd, args) => {
  dropCaches();
  return measureCommand([cmd, ...args], work);
};
// The seed's script but for its paths, log file and alerting, and one fix: as written,
// `cp -al "$LATEST" "$TARGET"` copies the `latest` symlink itself (cp -a does not follow it), so
// rsync then writes into the previous snapshot through it, changing that snapshot in place.
const seedScript = path.join(work, 'hpc-backup.sh');
writeFileSync(
  seedScript,
  `#!/bin/bash
BACKUP_SOURCE="$1"
BACKUP_DEST="$2"
DATE="$3"
LATEST="\${BACKUP_DEST}/latest"
TARGET="\${BACKUP_DEST}/\${DATE}"
if [ -d "$LATEST" ]; then
    cp -al "$(readlink -f "$LATEST")" "$TARGET"
fi
rsync -az --delete --exclude='*.tmp' --exclude='.Trash*' "\${BACKUP_SOURCE}/" "\${TARGET}/" || exit 1
ln -snf "$TARGET" "$LATEST"
`,
);

// Full snapshots, not timed.
console.error('full snapshots (not timed)...');
timed(process.execPath, [bin, 'backup', '-r', smRepo, src]);
mkdirSync(seedRoot);
timed('bash', [seedScript, src, seedRoot, 'day1']);

// Change the source: rewrite 1% of the files (new content, new size), seeded.
const rand = prng(7);
const changed = Math.round(count * changedShare);
const picked = new Set();
while (picked.size < changed) picked.add(Math.floor(rand() * count));
let changedBytes = 0;
for (const i of picked) {
  const file = path.join(
    src,
    `d${String(Math.floor(i / 100)).padStart(4, '0')}`,
    `f${String(i % 100).padStart(2, '0')}.bin`,
  );
  const data = Buffer.concat([readFileSync(file), Buffer.from(`changed ${i}\n`)]);
  data[0] ^= 0xff;
  writeFileSync(file, data);
  changedBytes += data.length;
}
console.error(`changed ${changed} files (${(changedBytes / MiB).toFixed(1)} MiB)`);

const latestId = () =>
  JSON.parse(
    execFileSync(process.execPath, [bin, 'snapshots', '--json', '-r', smRepo], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1),
  ).id;
const fullId = latestId();
// Space: on the disk, du of each repository (it counts a hard-linked inode once); on XFS, what
// the file system says it has in use (du would count a block shared by two files twice), taken
// around each tool's first run, after a sync and with the inodes dropped from memory (XFS
// trims its speculative preallocations past EOF only then).
const used = () => {
  dropCaches();
  const f = statfsSync(work);
  return (f.blocks - f.bfree) * f.bsize;
};
const space = { sm: () => du(smRepo), seed: () => du(seedRoot) };
const trash = path.join(work, 'trash'); // the trials' snapshots, removed at the end
mkdirSync(trash);
const added = {};
const runs = { sm: [], seed: [] };
let manifestBytes;
let shared;
for (let k = 0; k < trials; k++) {
  // Turns: who goes first alternates, so neither always finds the other's dirty pages.
  const order = k % 2 === 0 ? ['sm', 'seed'] : ['seed', 'sm'];
  for (const who of order) {
    const measure = opt.fs === 'xfs' ? used : space[who];
    const before = k === 0 ? measure() : 0;
    if (who === 'sm') runs.sm.push(timed(process.execPath, [bin, 'backup', '-r', smRepo, src]));
    else runs.seed.push(timed('bash', [seedScript, src, seedRoot, 'day2']));
    if (k === 0) added[who] = measure() - before;
  }
  const id = latestId();
  if (k === 0) {
    // The snapshots must be right, or the figures mean nothing: both restore to the source.
    execFileSync('diff', ['-r', src, path.join(smRepo, 'trees', id)]);
    execFileSync('diff', ['-r', src, path.join(seedRoot, 'day2')]);
    shared = JSON.parse(readFileSync(path.join(smRepo, 'snapshots', `${id}.json`), 'utf8')).stats.sharedBytes;
    manifestBytes = du(path.join(smRepo, 'manifests', id)) + du(path.join(smRepo, 'snapshots', `${id}.json`));
  }
  // Back to the state before the incrementals, for the next trial. The two trees are moved aside,
  // not removed: ext4 passes over inodes freed in the last 30 seconds when it allocates one
  // (recently_deleted), so a removal just before a run made that run's mkdirs and new files
  // slower, by as much again as the run itself at times, and whichever tool went first paid most.
  renameSync(path.join(smRepo, 'trees', id), path.join(trash, `sm-${k}`));
  renameSync(path.join(seedRoot, 'day2'), path.join(trash, `seed-${k}`));
  for (const d of ['snapshots', 'manifests']) {
    rmSync(path.join(smRepo, d, d === 'snapshots' ? `${id}.json` : id), { recursive: true, force: true });
  }
  rmSync(path.join(seedRoot, 'latest'));
  symlinkSync(path.join(seedRoot, 'day1'), path.join(seedRoot, 'latest'));
  if (latestId() !== fullId) throw new Error('the repository did not go back to its full snapshot');
}
const med = (xs, key) => median(xs.map((x) => x[key]));
const smTime = med(runs.sm, 'command');
const seedTime = med(runs.seed, 'command');
const smDurable = med(runs.sm, 'durable');
const seedDurable = med(runs.seed, 'durable');
// Paired: each trial's two runs are back to back, so their ratio is less moved by this VM's drift
// (10–30% within an hour) than the ratio of the medians.
const paired = (key) => median(runs.sm.map((r, k) => runs.seed[k][key] / r[key]));

const mb = (b) => (b / MiB).toFixed(1);
const kib = (b) => String(Math.round(b / 1024));
const rss = (xs) => (xs[0].rssKiB === null ? '–' : (Math.max(...xs.map((x) => x.rssKiB)) / 1024).toFixed(0));
const all = (xs, key) => xs.map((x) => x[key].toFixed(2)).join(', ');
console.log(
  `\nIncremental backup of ${count} files with ${changed} changed (${mb(changedBytes)} MiB), cold cache, same data, median of ${trials}, on ${opt.fs === 'xfs' ? 'XFS with reflinks (loop device)' : 'the disk'}:\n`,
);
console.log(
  table(
    [
      '',
      'time (s)',
      'time incl. sync (s)',
      'trials incl. sync (s)',
      'peak RSS (MiB)',
      'space added (KiB)',
      'of which manifest and record (KiB)',
    ],
    [
      [
        'stripemover backup',
        smTime.toFixed(2),
        smDurable.toFixed(2),
        all(runs.sm, 'durable'),
        rss(runs.sm),
        kib(added.sm),
        kib(manifestBytes),
      ],
      [
        'seed script: cp -al + rsync -az --delete',
        seedTime.toFixed(2),
        seedDurable.toFixed(2),
        all(runs.seed, 'durable'),
        rss(runs.seed),
        kib(added.seed),
        '–',
      ],
      [
        'ratio (seed / stripemover)',
        `${(seedTime / smTime).toFixed(2)}×`,
        `${(seedDurable / smDurable).toFixed(2)}×`,
        '',
        '',
        `${(added.seed / added.sm).toFixed(2)}×`,
        '',
      ],
      [
        "median of the trials' ratios",
        `${paired('command').toFixed(2)}×`,
        `${paired('durable').toFixed(2)}×`,
        runs.sm.map((r, k) => `${(runs.seed[k].durable / r.durable).toFixed(2)}×`).join(', '),
        '',
        '',
        '',
      ],
    ],
  ),
);
console.log(
  `\nstripemover's snapshot record: ${shared ?? 0} bytes of the changed files left shared with the parent's copies`,
);
console.log(
  `\ntargets: faster than the script: ${smDurable < seedDurable ? 'met' : 'missed'} (incl. sync), ${smTime < seedTime ? 'met' : 'missed'} (command alone); no more space: ${added.sm <= added.seed ? 'met' : 'missed'}`,
);
// Restore of the full snapshot against `cp -a` of the script's (how its users restore), once
// each from a cold cache: time and peak RSS (restore keeps no per-entry state, so its RSS does
// not grow with the snapshot), each result compared with the snapshot's tree.
const restored = { sm: path.join(work, 'restored-sm'), cp: path.join(work, 'restored-cp') };
const restoreRuns = {
  sm: timed(process.execPath, [bin, 'restore', '-r', smRepo, fullId, restored.sm]),
  cp: timed('cp', ['-a', path.join(seedRoot, 'day1'), restored.cp]),
};
execFileSync('diff', ['-r', path.join(smRepo, 'trees', fullId), restored.sm]);
execFileSync('diff', ['-r', path.join(seedRoot, 'day1'), restored.cp]);
console.log(`\nRestore of the full snapshot (${count} files), cold cache, once each:\n`);
console.log(
  table(
    ['', 'time (s)', 'time incl. sync (s)', 'peak RSS (MiB)'],
    [
      ['stripemover restore (every byte checked against the manifest)', restoreRuns.sm],
      ["cp -a of the script's snapshot", restoreRuns.cp],
    ].map(([what, r]) => [what, r.command.toFixed(2), r.durable.toFixed(2), rss([r])]),
  ),
);
rmSync(work, { recursive: true, force: true });
rmSync(srcHome, { recursive: true, force: true });
