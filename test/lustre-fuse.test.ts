// A copy on ostfs, the FUSE file system that stores each stripe on its OST's directory: the
// layouts the double reports are the real placement there, so this checks that stripemover
// keeps them exactly (PFL included), that per-OST units move the right bytes, and that the data
// arrives intact, by ostfs's own per-OST counters and by an independent comparison.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { shmDir, isRoot, writeRandom } from './helpers/fixtures.js';
import { describeTree } from './helpers/tree.js';
import { useLustreDouble } from './helpers/lustre.js';
import { native } from '../src/native.js';
import { copy } from '../src/engine/copy.js';
import { parseLayoutSpec } from '../src/layout/spec.js';
import { sameStriping } from '../src/layout/model.js';

const MiB = 1024 * 1024;
const ostfs = fileURLToPath(new URL('lustre-fuse/ostfs.sh', import.meta.url));

if (!isRoot || !existsSync('/dev/fuse')) {
  t.plan(0, 'needs root and /dev/fuse for the ostfs mount');
} else {
  const base = shmDir(t);
  const [backing, mnt] = [`${base}/backing`, `${base}/mnt`];
  mkdirSync(mnt);
  useLustreDouble([mnt], 8);
  execFileSync('sh', [ostfs, 'start', backing, mnt, '--osts', '8'], { stdio: 'inherit' });
  t.teardown(() => execFileSync('sh', [ostfs, 'stop', backing, mnt], { stdio: 'inherit' }));

  t.test('a copy within ostfs keeps layouts exactly, PFL included, and every byte', async (t) => {
    const src = `${mnt}/src`;
    mkdirSync(src);
    const files: Record<string, [string, number]> = {
      one: ['-c 1 -S 1M -o 3', 9 * MiB + 5],
      four: ['-c 4 -S 1M -o 4,5,6,7', 33 * MiB],
      wide: ['-c 8 -S 64K', 7 * MiB + 4097],
      pfl: ['-E 1M -c 1 -S 1M -E 16M -c 2 -S 1M -E -1 -c 4 -S 4M', 40 * MiB + 1],
      small: ['-c 2 -S 1M', 1000],
    };
    for (const [name, [spec, size]] of Object.entries(files)) {
      native.lustre.createFile(`${src}/${name}`, parseLayoutSpec(spec), { keepOsts: true, mode: 0o644 });
      writeRandom(`${src}/${name}`, size, size);
    }
    const s = await copy(src, `${mnt}/dst`, { verify: true, chunkSize: 4 * MiB }).done;
    t.equal(s.failed, 0, JSON.stringify(s.failures));
    t.same(
      describeTree(`${mnt}/dst`, { xattrs: false }),
      describeTree(src, { xattrs: false }),
      'same tree, same bytes',
    );
    for (const name of Object.keys(files)) {
      const [a, b] = [native.lustre.layout(`${src}/${name}`), native.lustre.layout(`${mnt}/dst/${name}`)];
      t.ok(sameStriping(b, a), `${name}: same layout`);
      t.same(
        b.components.map((c) => c.osts.length),
        a.components.map((c) => c.osts.length),
        `${name}: as many OSTs per component`,
      );
    }
    // Per-OST streams moved exactly each OST's share of the source, by the layouts' own account.
    const expected: Record<string, number> = {};
    for (const [name, [, size]] of Object.entries(files)) {
      if (size <= 4 * MiB) continue; // small files are batched whole
      const l = native.lustre.layout(`${src}/${name}`);
      for (const c of l.components) {
        const end = Math.min(c.end ?? Infinity, size);
        for (let at = c.start; at < end; at += c.stripeSize) {
          const k = `ost:${c.osts[Math.floor((at - c.start) / c.stripeSize) % c.osts.length]}`;
          expected[k] = (expected[k] ?? 0) + Math.min(c.stripeSize, end - at);
        }
      }
    }
    const moved = Object.fromEntries(Object.entries(s.streams).filter(([k]) => k.startsWith('ost:')));
    const small = files.small![1];
    const smallOst = `ost:${native.lustre.layout(`${src}/small`).components[0]!.osts[0]}`;
    moved[smallOst] = moved[smallOst]! - small;
    if (moved[smallOst] === 0) delete moved[smallOst];
    t.same(moved, expected, 'bytes per OST stream = bytes per OST in the layouts');
    // ostfs stored the copies' stripes in its per-OST directories: objects exist on the OSTs
    // the destination layouts name.
    const ino = statSync(`${backing}/mdt/dst/four`).ino;
    const osts = native.lustre.layout(`${mnt}/dst/four`).components[0]!.osts;
    for (const o of osts) {
      t.ok(
        readdirSync(`${backing}/ost${o}`).some((f) => f.startsWith(`${ino}.`)),
        `an object of dst/four on ost${o}`,
      );
    }
  });
}
