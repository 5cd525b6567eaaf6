#!/usr/bin/env node
// npm run bench:lustre -- [--osts 8] [--ost-mbps 64] [--ost-seek-us 8000] [--scale 1] [--trials 1]
//                         [--streams 1,2,4,8]
//
// Per-OST scheduling against naive chunk order, at equal concurrency, on an emulated Lustre:
// ostfs (test/lustre-fuse) stores each stripe on its OST's backing directory and gives every OST
// a bandwidth and one request at a time; the liblustreapi test double reads the real placement
// from it. The same stripemover copy runs with --no-stripe-aware (contiguous 64 MiB chunks in
// file order, what dcp-like copiers do) and without (one queue per OST, at most one unit per OST
// running, the default), with the same --threads; cp -a and rsync -a read the same files as
// references.
// Prints a Markdown table of MB/s and ratios, and writes bench/lustre-ost.svg (with seeks) or
// bench/lustre-ost-noseek.svg (--ost-seek-us 0).
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomFillSync } from 'node:crypto';
import { MiB, median, table } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(here);
const { values: args } = parseArgs({
  options: {
    osts: { type: 'string', default: '8' },
    'ost-mbps': { type: 'string', default: '64' },
    // A Lustre OST is mostly a RAID of disks: a request that does not continue the previous one
    // costs a seek. 0 models flash OSTs, where only bandwidth and queueing count.
    'ost-seek-us': { type: 'string', default: '8000' },
    scale: { type: 'string', default: '1' },
    trials: { type: 'string', default: '1' },
    streams: { type: 'string', default: '1,2,4,8' },
    work: { type: 'string', default: '/dev/shm/stripemover-bench-lustre' },
  },
});
const osts = Number(args.osts);
const ostBw = Number(args['ost-mbps']) * 1e6;
const seekUs = Number(args['ost-seek-us']);
const scale = Number(args.scale);
const trials = Number(args.trials);
const streamCounts = args.streams.split(',').map(Number);
const work = args.work;
const [backing, mnt, dest] = ['backing', 'mnt', 'dest'].map((d) => path.join(work, d));

const ostfs = (...a) => execFileSync('sh', [path.join(repo, 'test/lustre-fuse/ostfs.sh'), ...a], { stdio: 'inherit' });
execFileSync('sh', [path.join(repo, 'test/lustre-double/build.sh')], { stdio: 'inherit' });
process.env.STRIPEMOVER_LIBLUSTREAPI = path.join(repo, 'build/test-double/liblustreapi.so.1');
process.env.LLAPI_DOUBLE_MOUNTS = mnt;
process.env.LLAPI_DOUBLE_OSTS = String(osts);
const { native, parseLayoutSpec } = await import('../dist/index.js');

// Placement as Lustre's round-robin allocator leaves it on an evenly filled file system: every
// OST holds the same share, in wide-striped files (starting on different OSTs), files of one
// and two stripes, and PFL files. Balanced on purpose: no scheduling can beat an OST holding
// more than its share, so an unbalanced set would measure the data, not the scheduler.
const files = [];
const all = (from, n) => Array.from({ length: n }, (_, k) => (from + k) % osts).join(',');
for (let i = 0; i < 8; i++)
  files.push({ name: `wide${i}`, size: 128 * MiB, spec: `-c ${osts} -S 1M -o ${all(i * 3, osts)}` });
for (let i = 0; i < osts; i++) files.push({ name: `one${i}`, size: 64 * MiB, spec: `-c 1 -S 1M -o ${(i * 5) % osts}` });
for (let i = 0; i < osts / 2; i++)
  files.push({ name: `two${i}`, size: 32 * MiB, spec: `-c 2 -S 4M -o ${all(2 * i, 2)}` });
// PFL: 32 MiB on two OSTs, then four OSTs to the end; four files cover every OST equally.
for (let i = 0; i < 4; i++) {
  const spec = `-E 32M -c 2 -S 1M -o ${all(2 * i, 2)} -E -1 -c ${osts / 2} -S 4M -o ${all((i % 2) * (osts / 2), osts / 2)}`;
  files.push({ name: `pfl${i}`, size: 96 * MiB, spec });
}
for (const f of files) f.size = Math.round(f.size * scale);
const total = files.reduce((s, f) => s + f.size, 0);

function stop() {
  try {
    ostfs('stop', backing, mnt);
  } catch {
    // not running
  }
}

stop();
rmSync(work, { recursive: true, force: true });
mkdirSync(mnt, { recursive: true });
ostfs(
  'start',
  backing,
  mnt,
  '--osts',
  String(osts),
  '--ost-bw',
  String(ostBw),
  '--ost-concurrency',
  '1',
  '--ost-seek-us',
  String(seekUs),
);
process.on('exit', stop);
try {
  // Writing is throttled too: this costs total / (osts × bandwidth) seconds at best.
  const chunk = Buffer.alloc(4 * MiB);
  mkdirSync(path.join(mnt, 'src'));
  for (const f of files) {
    const p = path.join(mnt, 'src', f.name);
    native.lustre.createFile(p, parseLayoutSpec(f.spec), { keepOsts: true, mode: 0o644 });
    const fd = openSync(p, 'w');
    for (let at = 0; at < f.size; at += chunk.length)
      writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, f.size - at));
    closeSync(fd);
  }
  console.log(
    `data: ${files.length} files, ${(total / MiB).toFixed(0)} MiB on ${osts} emulated OSTs of ${ostBw / 1e6} MB/s each, one request at a time`,
  );

  const runOnce = (label, cmd, cmdArgs) => {
    rmSync(dest, { recursive: true, force: true });
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8' });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr}`);
    return seconds;
  };
  const measure = (label, cmd, cmdArgs) => {
    const s = median(Array.from({ length: trials }, () => runOnce(label, cmd, cmdArgs)));
    const mbps = total / s / 1e6;
    console.log(`  ${label}: ${s.toFixed(2)} s, ${mbps.toFixed(0)} MB/s`);
    return mbps;
  };
  const bin = path.join(repo, 'bin/stripemover.js');
  const results = [];
  for (const n of streamCounts) {
    const common = ['copy', '--threads', String(n), path.join(mnt, 'src'), dest];
    const naive = measure(`naive order, ${n} streams`, process.execPath, [bin, ...common, '--no-stripe-aware']);
    const perOst = measure(`per-OST, ${n} streams`, process.execPath, [bin, ...common]);
    results.push({ n, naive, perOst });
  }
  const cp = measure('cp -a', 'cp', ['-a', path.join(mnt, 'src'), dest]);
  const rsync = measure('rsync -a', 'rsync', ['-a', path.join(mnt, 'src') + '/', dest]);
  // Where the bytes went, by ostfs's own per-OST counters: placement is real, not assumed.
  console.log('\nostfs per-OST counters over the whole run (ost read_bytes write_bytes busy_ns max_queue):');
  console.log(execFileSync('getfattr', ['--only-values', '-n', 'user.ostfs.stats', mnt], { encoding: 'utf8' }));

  const best = Math.max(...results.map((r) => r.perOst / r.naive));
  console.log('');
  console.log(
    table(
      ['streams', 'naive order MB/s', 'per-OST MB/s', 'per-OST / naive', 'per-OST / cp -a', 'per-OST / rsync'],
      results.map((r) => [
        r.n,
        r.naive.toFixed(0),
        r.perOst.toFixed(0),
        `${(r.perOst / r.naive).toFixed(2)}×`,
        `${(r.perOst / cp).toFixed(2)}×`,
        `${(r.perOst / rsync).toFixed(2)}×`,
      ]),
    ),
  );
  console.log(
    `\ncp -a ${cp.toFixed(0)} MB/s, rsync -a ${rsync.toFixed(0)} MB/s (one stream each); ceiling ${((osts * ostBw) / 1e6).toFixed(0)} MB/s`,
  );
  console.log(
    `target: per-OST ≥ 1.5× naive at equal concurrency: best ${best.toFixed(2)}× → ${best >= 1.5 ? 'met' : 'missed'}`,
  );
  const plot = seekUs > 0 ? 'lustre-ost.svg' : 'lustre-ost-noseek.svg';
  writeFileSync(path.join(here, plot), svg(results, (osts * ostBw) / 1e6, { cp, rsync }));
  console.log(`plot: bench/${plot}`);
} finally {
  stop();
  rmSync(work, { recursive: true, force: true });
}

/** A line plot of MB/s against streams, both orders, with the ceiling and the peers marked. */
function svg(results, ceiling, peers) {
  const W = 640,
    H = 400,
    L = 70,
    R = 170,
    T = 40,
    B = 50;
  const xs = results.map((r) => r.n);
  const x = (n) =>
    L + ((Math.log2(n) - Math.log2(xs[0])) / Math.max(1, Math.log2(xs.at(-1)) - Math.log2(xs[0]))) * (W - L - R);
  const top = Math.ceil((ceiling * 1.1) / 100) * 100;
  const y = (v) => H - B - (v / top) * (H - T - B);
  const line = (key, color, label) => {
    const pts = results.map((r) => `${x(r.n).toFixed(1)},${y(r[key]).toFixed(1)}`).join(' ');
    const last = results.at(-1);
    return (
      `<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${pts}"/>` +
      results
        .map((r) => `<circle cx="${x(r.n).toFixed(1)}" cy="${y(r[key]).toFixed(1)}" r="4" fill="${color}"/>`)
        .join('') +
      `<text x="${x(last.n) + 10}" y="${y(last[key]) + 4}" fill="${color}" font-size="13">${label}</text>`
    );
  };
  const hline = (v, color, label) =>
    `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="${color}" stroke-dasharray="5,4"/>` +
    `<text x="${W - R + 10}" y="${y(v) + 4}" fill="${color}" font-size="12">${label}</text>`;
  const ticks = Array.from({ length: 6 }, (_, i) => (top / 5) * i)
    .map(
      (v) =>
        `<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end" font-size="12">${v.toFixed(0)}</text><line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
    )
    .join('');
  const xt = xs
    .map((n) => `<text x="${x(n)}" y="${H - B + 20}" text-anchor="middle" font-size="12">${n}</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${L}" y="24" font-size="15" font-weight="bold">stripemover copy from an emulated ${osts}-OST Lustre (ostfs, ${seekUs / 1000} ms seeks)</text>
${ticks}${xt}
<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle" font-size="13">concurrent units (--threads)</text>
<text x="18" y="${(T + H - B) / 2}" font-size="13" transform="rotate(-90 18 ${(T + H - B) / 2})" text-anchor="middle">MB/s</text>
${hline(ceiling, '#999', 'all OSTs busy')}
${hline(peers.cp, '#c77', 'cp -a')}
${hline(peers.rsync, '#7a7', 'rsync -a')}
${line('naive', '#d62728', 'naive order')}
${line('perOst', '#1f77b4', 'per-OST')}
</svg>
`;
}
