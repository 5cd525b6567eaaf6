// The Lustre path end to end: the addon dlopens the liblustreapi test double exactly as it would
// the real library, reads and creates layouts, resolves FIDs, and the engine copies between
// emulated Lustre trees keeping layouts. Compared by independent means (the double's own xattr,
// Node's fs, describeTree), never by the engine's report alone.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { shmDir, isRoot, writeRandom } from './helpers/fixtures.js';
import { describeTree } from './helpers/tree.js';
import { useLustreDouble, setMounts, doubleLibrary } from './helpers/lustre.js';
import { native } from '../src/native.js';
import { copy } from '../src/engine/copy.js';
import { parseLayoutSpec, formatLayout } from '../src/layout/spec.js';
import { sameStriping, COMP_INIT, type Layout } from '../src/layout/model.js';

const MiB = 1024 * 1024;
const bin = fileURLToPath(new URL('../bin/stripemover.js', import.meta.url));

if (!isRoot) {
  // The double keeps layouts in trusted.* xattrs, which only root may set.
  t.plan(0, 'needs root: the double stores layouts in trusted.lov');
} else {
  const base = shmDir(t);
  const [a, b, plain] = [`${base}/lustreA`, `${base}/lustreB`, `${base}/posix`];
  for (const d of [a, b, plain]) mkdirSync(d);
  useLustreDouble([a, b], 64);

  const layouts: Record<string, Layout> = {
    one: parseLayoutSpec('-c 1 -S 1M'),
    four: parseLayoutSpec('-c 4 -S 1M'),
    sixteen: parseLayoutSpec('-c 16 -S 64K'),
    pfl: parseLayoutSpec('-E 1M -L mdt -S 1M -E 8M -c 1 -S 1M -E -1 -c 4 -S 1M'),
    pool: parseLayoutSpec('-c 2 -S 2M -p flash'),
  };
  const sizes: Record<string, number> = {
    one: 3 * MiB + 1,
    four: 70 * MiB,
    sixteen: 5 * MiB + 17,
    pfl: 20 * MiB,
    pool: 10,
  };

  t.test('the double is loaded by dlopen; its missing symbols are named', async (t) => {
    const st = native.lustre.status();
    t.equal(st.loaded, true);
    t.equal(st.library, doubleLibrary);
    t.same(
      st.missing.sort(),
      [
        'llapi_changelog_clear',
        'llapi_changelog_fini',
        'llapi_changelog_free',
        'llapi_changelog_recv',
        'llapi_changelog_start',
      ],
      'changelog functions are absent from the double: reported, everything else works',
    );
    t.equal(native.lustre.isLustre(a), true);
    t.equal(native.lustre.isLustre(plain), false);
    t.throws(() => native.lustre.layout(`${plain}`), { code: 'ENOTTY', syscall: 'llapi_layout_get_by_path' });
  });

  t.test('layouts of 1, 4 and 16 stripes, a 3-component PFL file and a pool are created and read back', async (t) => {
    for (const [name, layout] of Object.entries(layouts)) {
      const file = `${a}/${name}`;
      native.lustre.createFile(file, layout, { keepOsts: false, mode: 0o644 });
      writeRandom(file, sizes[name]!, name.length);
      const got = native.lustre.layout(file);
      t.ok(sameStriping(got, layout), `${name}: same striping`);
      for (const c of got.components) {
        if (c.pattern === 2) continue;
        t.equal(c.osts.length, c.stripeCount, `${name}: an OST per stripe`);
        t.equal(new Set(c.osts).size, c.osts.length, `${name}: distinct OSTs`);
      }
      if (got.composite)
        t.ok(
          got.components.every((c) => c.flags & COMP_INIT),
          `${name}: instantiated`,
        );
      // By the fd too.
      const f = new native.File(file, 0);
      t.same(native.lustre.layout(f.fd), got, `${name}: by fd`);
      f.close();
    }
    const keep = parseLayoutSpec('-o 5,9,2');
    native.lustre.createFile(`${a}/placed`, keep, { keepOsts: true });
    t.same(native.lustre.layout(`${a}/placed`).components[0]!.osts, [5, 9, 2], 'OSTs asked for are kept');
    t.throws(() => native.lustre.createFile(`${a}/placed`, keep), { code: 'EEXIST' }, 'exclusive by default');
    t.throws(() => native.lustre.createFile(`${plain}/x`, keep), { code: 'ENOTTY', path: `${plain}/x` });
  });

  t.test('path2fid and fid2path round-trip, bytes and hard links included', async (t) => {
    const odd = Buffer.concat([Buffer.from(`${a}/caf`), Buffer.from([0xe9, 0x0a]), Buffer.from('name')]);
    writeFileSync(odd, 'x');
    linkSync(odd, `${a}/second-name`);
    const fid = native.lustre.pathToFid(odd);
    t.match(fid, /^\[0x[0-9a-f]+:0x[0-9a-f]+:0x[0-9a-f]+\]$/);
    t.equal(native.lustre.pathToFid(`${a}/second-name`), fid, 'one FID for both names');
    const names = [0, 1].map((n) => native.lustre.fidToPath(a, fid, n).toString('latin1')).sort();
    t.same(names, [odd.subarray(a.length + 1).toString('latin1'), 'second-name'].sort(), 'each link by its number');
    t.throws(() => native.lustre.fidToPath(a, 'nonsense'), { code: 'EINVAL' });
    t.throws(() => native.lustre.fidToPath(a, '[0x200000400:0xfffffff0:0x0]'), { code: 'ENOENT' });
  });

  // trusted.lov differs by design (OSTs chosen afresh): compared through the layouts instead.
  const dataOf = (root: string) => describeTree(root, { xattrs: false });

  t.test('a copy between emulated Lustre trees keeps every layout, OSTs reset, data exact', async (t) => {
    const h = copy(a, b, { verify: true, chunkSize: 4 * MiB });
    const s = await h.done;
    t.equal(s.failed, 0, JSON.stringify(s.failures));
    t.same(dataOf(b), dataOf(a), 'same tree, same bytes (independent comparison)');
    let moved = 0;
    for (const name of Object.keys(layouts)) {
      const [src, dst] = [native.lustre.layout(`${a}/${name}`), native.lustre.layout(`${b}/${name}`)];
      t.ok(sameStriping(dst, src), `${name}: striping kept`);
      if (JSON.stringify(dst.components.map((c) => c.osts)) !== JSON.stringify(src.components.map((c) => c.osts)))
        moved++;
    }
    t.ok(moved > 0, `OSTs chosen afresh (${moved} of ${Object.keys(layouts).length} files on other OSTs)`);
    const streams = Object.keys(s.streams);
    t.ok(
      streams.includes('mdt') && streams.filter((k) => k.startsWith('ost:')).length >= 4,
      `per-OST streams: ${streams}`,
    );
  });

  t.test('--layout keep, a spec, and inherit', async (t) => {
    const dst = `${b}/keep`;
    const s = await copy(a, dst, { layout: 'keep' }).done;
    t.equal(s.failed, 0);
    for (const name of Object.keys(layouts)) {
      t.same(
        native.lustre.layout(`${dst}/${name}`),
        native.lustre.layout(`${a}/${name}`),
        `${name}: identical, OSTs too`,
      );
    }
    const spec = parseLayoutSpec('-c 2 -S 128K');
    await copy(a, `${b}/spec`, { layout: spec }).done;
    for (const name of Object.keys(layouts))
      t.ok(sameStriping(native.lustre.layout(`${b}/spec/${name}`), spec), `${name}: the spec's layout`);
    await copy(a, `${b}/inherit`, { layout: 'inherit' }).done;
    t.equal(native.lustre.layout(`${b}/inherit/four`).components[0]!.stripeCount, 1, "inherit: the double's default");
  });

  t.test('Lustre to POSIX records each layout; POSIX back to Lustre recreates it', async (t) => {
    native.setXattr(`${a}/four`, 'user.project', 'p42');
    const s = await copy(a, plain, {}).done;
    t.equal(s.failed, 0);
    t.same(dataOf(plain), dataOf(a));
    t.same(
      native.listXattrs(`${plain}/four`).sort(),
      ['user.project', 'user.stripemover.layout'],
      'no trusted.lov leaks',
    );
    for (const name of Object.keys(layouts)) {
      const recorded = JSON.parse(native.getXattr(`${plain}/${name}`, 'user.stripemover.layout').toString());
      t.same(recorded, native.lustre.layout(`${a}/${name}`), `${name}: recorded exactly, OSTs included`);
    }
    const back = `${b}/restored`;
    t.equal((await copy(plain, back, {}).done).failed, 0);
    for (const name of Object.keys(layouts)) {
      t.ok(
        sameStriping(native.lustre.layout(`${back}/${name}`), native.lustre.layout(`${a}/${name}`)),
        `${name}: restored`,
      );
    }
    t.same(
      dataOf(back).filter((d) => d.type === 'file'),
      dataOf(a).filter((d) => d.type === 'file'),
    );
  });

  t.test('naive order: contiguous chunks on one stream, same result', async (t) => {
    const s = await copy(a, `${b}/naive`, { stripeAware: false, chunkSize: 4 * MiB }).done;
    t.equal(s.failed, 0);
    t.same(
      Object.keys(s.streams).filter((k) => k.startsWith('ost:')),
      [],
      'no per-OST streams',
    );
    t.same(dataOf(`${b}/naive`), dataOf(a));
  });

  t.test('CLI: layout, path2fid, fid2path', async (t) => {
    const env = { ...process.env };
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8' });
    const r = run('layout', `${a}/pfl`, `${a}/four`);
    t.equal(r.status, 0, r.stderr);
    t.equal(
      r.stdout,
      formatLayout(`${a}/pfl`, native.lustre.layout(`${a}/pfl`)) +
        formatLayout(`${a}/four`, native.lustre.layout(`${a}/four`)),
    );
    const j = JSON.parse(run('layout', '--json', `${a}/one`).stdout);
    t.same(j.layout, native.lustre.layout(`${a}/one`));
    t.equal(j.fid, native.lustre.pathToFid(`${a}/one`));
    const missing = run('layout', `${a}/nope`, `${a}/one`);
    t.equal(missing.status, 1, 'exit 1 when a path fails');
    t.match(missing.stderr, /ENOENT.*nope/);
    t.match(run('fid2path', a, j.fid).stdout, `${a}/one\n`);
    const off = run('layout', `${plain}/four`);
    t.match(off.stderr, /ENOTTY/, 'off Lustre: ENOTTY, named');
  });

  t.test('a missing library: a clear message, and POSIX mode', async (t) => {
    const env = { ...process.env, STRIPEMOVER_LIBLUSTREAPI: `${base}/no/liblustreapi.so.1` };
    const r = spawnSync(process.execPath, [bin, 'layout', `${a}/one`], { env, encoding: 'utf8' });
    t.equal(r.status, 1);
    t.match(r.stderr, /liblustreapi is not available .*no\/liblustreapi\.so\.1.*STRIPEMOVER_LIBLUSTREAPI/);
    const c = spawnSync(process.execPath, [bin, 'copy', '--json', a, `${plain}-nolib`], { env, encoding: 'utf8' });
    t.equal(c.status, 0, c.stderr);
    t.same(dataOf(`${plain}-nolib`), dataOf(a), 'copied as plain POSIX');
    setMounts([a, b], 64);
  });
}
