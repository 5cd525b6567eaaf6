#!/usr/bin/env node
// npm run bench:copy -- [--scale 1] [--trials 1] [--only big|small|noop|hash] [--dest DIR] [--timing durable|command]
// In one run, on the same data: `stripemover copy` against cp -a, rsync -a, tar | tar and (when
// installed) rclone, on 8 large files and on many small ones, plus a no-op resync of the small
// tree against rsync. Wall time and peak RSS (GNU time %M) per tool; medians and ratios as
// Markdown tables, with the project's targets marked met or missed. --only hash runs the big
// copy with and without hashing, back to back in alternating order, --trials pairs of them: the
// cost of hashing is small next to this disk's swings between runs, so it is taken as the median
// of each pair's own ratio.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  rmdirSync,
  statSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  GiB,
  MiB,
  dropCaches,
  run,
  have,
  median,
  table,
  gbps,
  cachedDataSet,
  makeSmallTree,
  sharedRandomBlock,
  gnuTime,
  measureCommand,
} from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(here);
const { values: opt } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    trials: { type: 'string', default: '1' },
    only: { type: 'string' },
    dest: { type: 'string', default: path.join(here, '.data', 'copy-dst') },
    // durable: the time to the data being on disk (the command, then `sync`); stripemover
    // makes its writes durable before it exits (--fsync), the peers leave dirty pages behind.
    // command: the command's own wall time only.
    timing: { type: 'string', default: 'durable' },
  },
});
const scale = Number(opt.scale);
const trials = Number(opt.trials);
if (!(scale > 0 && scale <= 1)) throw new Error(`--scale must be in (0, 1], got ${opt.scale}`);
if (!(Number.isInteger(trials) && trials >= 1)) throw new Error(`--trials must be a positive integer`);
if (opt.only && !['big', 'small', 'noop', 'hash'].includes(opt.only)) throw new Error(`--only big|small|noop|hash`);
if (!['durable', 'command'].includes(opt.timing)) throw new Error(`--timing durable|command`);
const want = (what) => !opt.only || opt.only === what || (opt.only === 'hash' && what === 'big');

// ---- data sets -------------------------------------------------------------------------------

const dataRoot = path.join(here, '.data', 'copy', ...(scale === 1 ? [] : [`scale-${scale}`]));
const BIG_FILES = 8;
const bigFileSize = Math.max(1, Math.round(scale * 1024)) * MiB;
const smallCount = Math.max(100, Math.round(100_000 * scale));
const PER_DIR = 100;
const PIECE = 8 * MiB;

const randomBlock = sharedRandomBlock;
const cached = (name, spec, make) => cachedDataSet(path.join(dataRoot, name), spec, make);

function makeBig(dir) {
  const b = randomBlock();
  for (let f = 0; f < BIG_FILES; f++) {
    const fd = openSync(path.join(dir, `file-${f}.bin`), 'w');
    for (let pos = 0, piece = 0; pos < bigFileSize; pos += PIECE, piece++) {
      const off = pos % b.length;
      const chunk = b.subarray(off, off + Math.min(PIECE, bigFileSize - pos));
      // A header per piece (file, offset), so no two 8 MiB pieces anywhere are equal.
      chunk.write('stripemover-bench', 0, 'latin1');
      chunk.writeUInt32LE(f, 20);
      chunk.writeUInt32LE(piece, 24);
      for (let o = 0; o < chunk.length;) o += writeSync(fd, chunk, o, chunk.length - o, pos + o);
    }
    fsyncSync(fd);
    closeSync(fd);
  }
}

const makeSmall = (dir) => makeSmallTree(dir, smallCount, PER_DIR);

// ---- measuring -------------------------------------------------------------------------------

const rel = (p) => {
  const r = path.relative(repo, p);
  return r.startsWith('..') ? p : r;
};
const q = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
const qq = (s) => (/^[\w./=+:,-]+$/.test(s) ? s : q(s)); // quoted only when needed
const shown = (argv) => argv.map(qq).join(' ');
/** A Markdown table cell: a | inside one, even in a code span, must be escaped. */
const cell = (s) => String(s).replaceAll('|', '\\|');
const mdTable = (headers, rows) =>
  table(
    headers,
    rows.map((r) => r.map(cell)),
  );

/** Runs argv (cwd: the repo) under GNU time: see lib.mjs measureCommand(). */
const measure = (argv) => measureCommand(argv, repo);

const du = (p) => Number(run('du', ['-sb', p]).split(/\s/)[0]);
const entries = (p) => Number(run('sh', ['-c', `find ${qq(p)} | wc -l`]).trim());
const fileBytes = (p) =>
  run('find', [p, '-type', 'f', '-printf', '%s\\n'])
    .split('\n')
    .reduce((n, s) => n + (s ? Number(s) : 0), 0);

/** The cheap check: same apparent size (du -sb) and the same number of entries; throws if not. */
function check(src, dst) {
  const [ns, nd] = [entries(src), entries(dst)];
  if (ns !== nd) throw new Error(`MISMATCH: ${rel(src)} has ${ns} entries, ${rel(dst)} has ${nd}`);
  const [bs, bd] = [du(src), du(dst)];
  if (bs === bd) return;
  // du -sb counts directories' own sizes too, and an ext4 directory never shrinks: one that
  // held temporary names while it was filled is bigger. So compare the files' bytes alone.
  const [fs, fd] = [fileBytes(src), fileBytes(dst)];
  if (fs !== fd) throw new Error(`MISMATCH: ${rel(src)} holds ${fs} bytes in files, ${rel(dst)} ${fd}`);
  notes.add(`du -sb differed (${bs} vs ${bd} bytes) only in directories' own sizes; the files' bytes were equal`);
}

/** stripemover's summary line on stderr. */
function summary(stderr) {
  const line = stderr.trim().split('\n').at(-1) ?? '';
  const m = /(\d+) files, .*?(\d+) skipped, (\d+) failed.*?(\d+) verified/.exec(line);
  return m ? { files: +m[1], skipped: +m[2], failed: +m[3], verified: +m[4], line } : { line };
}

const inodes = (p) => run('find', [p, '-type', 'f', '-printf', '%i %P\\n']);

// ---- tools -----------------------------------------------------------------------------------

const SM = ['node', 'bin/stripemover.js', 'copy'];
const sm = (name, ...flags) => ({ name, sm: true, argv: (s, d) => [...SM, ...flags, s, d] });
const peers = [
  { name: 'cp -a', argv: (s, d) => ['cp', '-a', s, d] },
  { name: 'rsync -a', argv: (s, d) => ['rsync', '-a', `${s}/`, `${d}/`] },
  {
    name: 'tar | tar',
    pre: (d) => mkdirSync(d),
    argv: (s, d) => ['sh', '-c', `tar -C ${qq(s)} -cf - . | tar -C ${qq(d)} -xf -`],
  },
];
const notes = new Set();
if (have('rclone'))
  peers.push({ name: 'rclone', argv: (s, d) => ['rclone', 'copy', s, d, '--transfers', '8', '--links'] });
else notes.add('rclone is not installed: no rclone rows');
if (!gnuTime) notes.add('GNU time (/usr/bin/time) is missing: no peak RSS (`apt-get install -y time`)');

const cold = dropCaches();
if (!cold) notes.add('the page cache could NOT be dropped (not root?): every run after the first is warm');

mkdirSync(opt.dest, { recursive: true });
if (statSync(opt.dest).dev !== statSync(path.join(here, '.data')).dev)
  notes.add(`--dest ${opt.dest} is on another device than the source`);

const results = new Map(); // key -> { runs: [measurements], argv, errors: [messages] }
const result = (key) => results.get(key) ?? results.set(key, { runs: [], argv: null, errors: [] }).get(key);
const failures = [];

/** rm -rf the destination, sync, drop caches; time the tool; check the copy. */
function copyOnce(set, tool, src, dst) {
  const key = `${set}:${tool.name}`;
  const r = result(key);
  run('rm', ['-rf', dst]);
  tool.pre?.(dst);
  dropCaches(); // syncs first
  const argv = tool.argv(rel(src), rel(dst));
  r.argv = argv;
  try {
    const m = measure(argv);
    if (tool.sm) {
      const s = summary(m.stderr);
      m.summary = s;
      if (s.failed) throw new Error(`stripemover reported ${s.failed} failed: ${s.line}`);
    }
    check(src, dst);
    r.runs.push(m);
    return true;
  } catch (err) {
    r.errors.push(err.message);
    const loud = /MISMATCH/.test(err.message);
    console.error(`\n${loud ? '!!!!! ' : ''}${tool.name} on ${set}: ${err.message}\n`);
    if (loud || !tool.sm) failures.push(`${tool.name} on ${set}: ${err.message}`);
    return false;
  }
}

/** A rerun over the complete copy dst: cold (caches dropped), then warm. */
function noopOnce(tool, argv, src, dst) {
  const before = inodes(dst);
  for (const temp of ['cold', 'warm']) {
    const r = result(`noop:${tool}:${temp}`);
    r.argv = argv;
    if (temp === 'cold') dropCaches();
    try {
      const m = measure(argv);
      if (tool === 'stripemover') {
        const s = (m.summary = summary(m.stderr));
        if (s.skipped !== smallCount)
          notes.add(`stripemover's no-op rerun skipped ${s.skipped} of ${smallCount} files: ${s.line}`);
      }
      r.runs.push(m);
    } catch (err) {
      r.errors.push(err.message);
      console.error(`\n${tool} no-op (${temp}): ${err.message}\n`);
    }
  }
  // Did the reruns leave every file alone? (Both tools write a temporary and rename it.)
  const after = inodes(dst);
  if (after !== before) {
    const b = new Set(before.split('\n'));
    const changed = after.split('\n').filter((l) => !b.has(l)).length;
    notes.add(`the ${tool} no-op rerun rewrote ${changed} of ${smallCount} files (new inodes)`);
  }
  try {
    check(src, dst);
  } catch (err) {
    console.error(`\n!!!!! ${tool} no-op rerun: ${err.message}\n`);
    failures.push(`${tool} no-op rerun: ${err.message}`);
  }
}

// ---- the runs --------------------------------------------------------------------------------

const bigSpec = { v: 1, files: BIG_FILES, size: bigFileSize };
const smallSpec = { v: 1, files: smallCount, perDir: PER_DIR, seed: 20260101 };

// Room for the sources not yet written, plus the largest destination (one exists at a time).
{
  const isCached = (name, spec) => {
    try {
      return readFileSync(path.join(dataRoot, `${name}.done`), 'utf8') === JSON.stringify(spec);
    } catch {
      return false;
    }
  };
  const bigNeed = want('big') ? BIG_FILES * bigFileSize : 0;
  const smallNeed = want('small') || want('noop') ? smallCount * 37 * 1024 : 0; // ~33 KiB a file, + blocks
  const need =
    (isCached('big', bigSpec) ? 0 : bigNeed) +
    (isCached('small', smallSpec) ? 0 : smallNeed) +
    Math.max(bigNeed, smallNeed);
  mkdirSync(dataRoot, { recursive: true });
  const { bavail, bsize } = statfsSync(dataRoot);
  if (bavail * bsize < need * 1.1)
    throw new Error(
      `needs ~${(need / GiB).toFixed(1)} GiB free on ${dataRoot}, has ${((bavail * bsize) / GiB).toFixed(1)}`,
    );
}
const big = want('big') ? cached('big', bigSpec, makeBig) : null;
const small = want('small') || want('noop') ? cached('small', smallSpec, makeSmall) : null;
const bigBytes = BIG_FILES * bigFileSize;
const smallBytes = small ? fileBytes(small) : 0;
const dstOf = (set) => path.join(opt.dest, set);

const hashing = [sm('stripemover (hash, no verify)'), sm('stripemover --no-hash', '--no-hash')];
const bigTools = opt.only === 'hash' ? hashing : [sm('stripemover --verify', '--verify'), ...hashing, ...peers];
const smallTools = [sm('stripemover --verify', '--verify'), ...peers];
const rotate = (xs, i) => xs.map((_, j) => xs[(i + j) % xs.length]);

for (let t = 0; t < trials; t++) {
  // Rotate the order between trials, so no tool always meets the same disk state.
  if (big) for (const tool of rotate(bigTools, t)) copyOnce('big', tool, big, dstOf('big'));
  if (small) {
    const tools = want('small') ? smallTools : smallTools.filter((x) => x.sm || x.name === 'rsync -a');
    for (const tool of rotate(tools, t)) {
      const ok = copyOnce('small', tool, small, dstOf('small'));
      if (!ok || !want('noop')) continue;
      if (tool.sm) noopOnce('stripemover', [...SM, rel(small), rel(dstOf('small'))], small, dstOf('small'));
      if (tool.name === 'rsync -a')
        noopOnce('rsync -a', ['rsync', '-a', `${rel(small)}/`, `${rel(dstOf('small'))}/`], small, dstOf('small'));
    }
  }
}
// stripemover's fixed cost (Node, the worker pool, the native addon): a copy of an empty tree.
// It matters on scaled-down runs, where it is a large part of every stripemover time.
const empty = path.join(dataRoot, 'empty');
mkdirSync(empty, { recursive: true });
try {
  const m = measure([...SM, rel(empty), rel(dstOf('empty'))]);
  notes.add(`\`stripemover copy\` of an empty tree (its fixed startup/teardown cost) took ${m.command.toFixed(2)} s`);
} catch (err) {
  notes.add(`\`stripemover copy\` of an empty tree failed: ${err.message.split('\n')[0]}`);
}
for (const set of ['big', 'small', 'empty']) rmSync(dstOf(set), { recursive: true, force: true });
try {
  rmdirSync(opt.dest);
} catch {
  // not empty or not ours: leave it
}

// ---- the report ------------------------------------------------------------------------------

const medianOf = (key, field) => {
  const r = results.get(key);
  return r?.runs.length ? median(r.runs.map((m) => m[field])) : null;
};
const secs = (key) => medianOf(key, opt.timing);
const cmdSecs = (key) => medianOf(key, 'command');
const durSecs = (key) => medianOf(key, 'durable');
const rssMiB = (key) => {
  const r = results.get(key);
  const xs = r?.runs.map((m) => m.rssKiB).filter((x) => x != null) ?? [];
  return xs.length ? Math.max(...xs) / 1024 : null;
};
/** The tool's name, with how many of its runs failed, if any did (those are not in the medians). */
const named = (name, key) => {
  const r = results.get(key);
  return r?.errors.length ? `${name} (${r.errors.length} of ${r.errors.length + r.runs.length} runs failed)` : name;
};
const f2 = (x) => (x == null ? '—' : x.toFixed(2));
const ratio = (x) => (x == null || !Number.isFinite(x) ? '—' : `**${x.toFixed(2)}×**`);
const status = (key) => {
  const r = results.get(key);
  return r?.errors.length ? `failed: ${r.errors[0].split('\n')[0].slice(0, 160)}` : '';
};

function copyTable(set, tools, rate, rateName) {
  const main = `${set}:stripemover --verify`;
  const rows = tools.map((tool) => {
    const key = `${set}:${tool.name}`;
    const s = secs(key);
    const peerRatio = !tool.sm && s != null && secs(main) != null ? rate(secs(main)) / rate(s) : null;
    return [
      named(tool.name, key),
      `\`${shown(results.get(key)?.argv ?? tool.argv('SRC', 'DST'))}\``,
      f2(cmdSecs(key)),
      f2(durSecs(key)),
      s == null ? status(key) : rate(s).toFixed(rateName === 'GB/s' ? 2 : 0),
      f2(rssMiB(key)),
      tool.sm ? '' : ratio(peerRatio),
    ];
  });
  return mdTable(
    ['tool', 'command', 's', 's incl. sync', rateName, 'peak RSS MiB', 'stripemover --verify ÷ this'],
    rows,
  );
}

const targets = [];
const target = (what, measured, met) =>
  targets.push([what, measured ?? 'not measured', measured == null ? '—' : met ? 'met' : '**missed**']);

const lines = [];
const out = (s = '') => lines.push(s);
const dev = run('df', ['--output=source,fstype', here]).split('\n')[1].trim().replace(/\s+/, ', ');
out(
  `\n### bench:copy — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / GiB)} GiB, ${dev}, Node ${process.version}, median of ${trials}${cold ? ', page cache dropped before every run' : ', page cache NOT dropped'}\n`,
);
out(`Command: \`npm run bench:copy -- ${process.argv.slice(2).join(' ')}\``.trimEnd());
out(
  `Timing: ${opt.timing === 'durable' ? "rates and ratios use 's incl. sync': the command, then `sync` (stripemover makes its writes durable before it exits, per its --fsync default; the peers leave dirty pages)" : "rates and ratios use the command's own wall time ('s'); the `sync` after it is not counted"}. Peak RSS: GNU time %M, the largest single process of the tree.`,
);

if (big) {
  const rate = (s) => bigBytes / s / 1e9;
  out(`\n#### big: ${BIG_FILES} files × ${(bigFileSize / MiB).toFixed(0)} MiB (${gbps(bigBytes, 1)} GB), random\n`);
  out(copyTable('big', bigTools, rate, 'GB/s'));
  const v = secs('big:stripemover --verify');
  const cp = secs('big:cp -a');
  target('big: verified copy ≥ 2.5× `cp -a` (GB/s)', v && cp ? `${(cp / v).toFixed(2)}×` : null, cp / v >= 2.5);
  const h = secs('big:stripemover (hash, no verify)');
  const nh = secs('big:stripemover --no-hash');
  const cost = h && nh ? 1 - rate(h) / rate(nh) : null;
  target(
    'big: cost of hashing ≤ 5% (1 − GB/s hashed ÷ GB/s `--no-hash`, neither verifying), medians',
    cost == null ? null : `${(cost * 100).toFixed(1)}%`,
    cost <= 0.05,
  );
  // Trial t's two runs, whatever their order, as a pair: both met the disk in about the same state.
  const [hr, nhr] = hashing.map((tool) => results.get(`big:${tool.name}`)?.runs ?? []);
  if (hr.length === trials && nhr.length === trials) {
    const costs = hr.map((m, t) => 1 - nhr[t][opt.timing] / m[opt.timing]);
    const paired = median(costs);
    target(
      `big: cost of hashing ≤ 5%, median of the ${trials} trials' own costs (${costs.map((c) => `${(c * 100).toFixed(1)}%`).join(', ')})`,
      `${(paired * 100).toFixed(1)}%`,
      paired <= 0.05,
    );
  }
}
if (small && want('small')) {
  const rate = (s) => smallCount / s;
  out(
    `\n#### small: ${smallCount} files of 1–64 KiB in ${Math.ceil(smallCount / PER_DIR)} directories (${gbps(smallBytes, 1)} GB)\n`,
  );
  out(copyTable('small', smallTools, rate, 'files/s'));
  const v = secs('small:stripemover --verify');
  const rs = secs('small:rsync -a');
  target('small: verified copy ≥ 1.6× `rsync -a` (files/s)', v && rs ? `${(rs / v).toFixed(2)}×` : null, rs / v >= 1.6);
}
if (small && want('noop')) {
  out(`\n#### no-op resync of the small tree (${smallCount} files, destination complete, made by the same tool)\n`);
  const rows = [];
  for (const temp of ['cold', 'warm']) {
    const smk = `noop:stripemover:${temp}`;
    const rsk = `noop:rsync -a:${temp}`;
    for (const [name, key] of [
      ['stripemover', smk],
      ['rsync -a', rsk],
    ]) {
      const s = secs(key);
      rows.push([
        named(name, key),
        temp,
        `\`${shown(results.get(key)?.argv ?? [])}\``,
        s == null ? status(key) || '—' : f2(s),
        f2(rssMiB(key)),
        name === 'rsync -a' && s != null && secs(smk) != null ? ratio(secs(smk) / s) : '',
      ]);
    }
    const a = secs(smk);
    const b = secs(rsk);
    target(
      `no-op resync, ${temp} cache: stripemover time ≤ \`rsync -a\` time`,
      a && b ? `${a.toFixed(2)} s vs ${b.toFixed(2)} s (${(a / b).toFixed(2)}×)` : null,
      a <= b,
    );
  }
  out(mdTable(['tool', 'cache', 'command', 's', 'peak RSS MiB', 'stripemover time ÷ this'], rows));
}
const smKeys = [...results.keys()].filter((k) => k.includes('stripemover'));
const peak = Math.max(...smKeys.map(rssMiB).filter((x) => x != null));
const worst = smKeys.find((k) => rssMiB(k) === peak);
target(
  'peak RSS of stripemover ≤ 256 MiB (largest over its runs)',
  Number.isFinite(peak) ? `${peak.toFixed(0)} MiB (${worst})` : null,
  peak <= 256,
);
out('\n#### targets\n');
out(mdTable(['target', 'measured', ''], targets));
const smRuns = [...results.entries()].filter(([k]) => k.includes('stripemover'));
const summaries = smRuns.flatMap(([k, r]) => r.runs.slice(0, 1).map((m) => `- ${k}: ${m.summary?.line ?? ''}`));
if (summaries.length) out(`\nstripemover's own summaries (first good run):\n\n${summaries.join('\n')}`);
const errors = [...results.entries()].flatMap(([k, r]) =>
  r.errors.map((e) => `- ${k}: ${e.replaceAll('\n', ' / ').slice(0, 400)}`),
);
if (errors.length) out(`\nFailed runs (left out of the medians):\n\n${errors.join('\n')}`);
if (notes.size) out(`\nNotes:\n\n${[...notes].map((n) => `- ${n}`).join('\n')}`);
console.log(lines.join('\n'));
if (failures.length) {
  console.error(`\n!!!!! FAILED:\n${failures.map((f) => `- ${f}`).join('\n')}`);
  process.exitCode = 1;
}
