// The Layout model: which target holds any byte range, and the per-stripe runs the planner cuts,
// checked case by case and, on seeded random layouts, byte by byte against a brute-force reference.
import t from 'tap';
import {
  COMP_INIT,
  PATTERN,
  pieces,
  primaryMirror,
  resetOsts,
  sameStriping,
  stripeRuns,
  targetAt,
  type Layout,
  type LayoutComponent,
  type Target,
} from '../src/layout/model.js';
import { formatLayout, parseLayoutSpec } from '../src/layout/spec.js';
import { prng } from './helpers/fixtures.js';

const MiB = 1024 * 1024;

function comp(over: Partial<LayoutComponent>): LayoutComponent {
  return {
    start: 0,
    end: null,
    pattern: 0,
    stripeSize: MiB,
    stripeCount: 1,
    flags: COMP_INIT,
    pool: '',
    osts: [0],
    ...over,
  };
}
const plain = (stripeSize: number, osts: number[]): Layout => ({
  composite: false,
  components: [comp({ stripeSize, stripeCount: osts.length, osts, flags: 0 })],
});

/** The reference: the target of one byte, straight from the definition of RAID0 striping. */
function targetOfByte(l: Layout, x: number): string {
  const c = l.components.find((c) => x >= c.start && x < (c.end ?? Infinity));
  if (!c) return 'none';
  if (c.pattern & PATTERN.MDT) return 'mdt';
  if (c.osts.length === 0 || c.stripeSize === 0) return 'none';
  return `ost:${c.osts[Math.floor((x - c.start) / c.stripeSize) % c.osts.length]}`;
}
const name = (t: Target) => (t.kind === 'ost' ? `ost:${t.index}` : t.kind);

t.test('plain layouts of 1, 4 and 16 stripes', async (t) => {
  t.same(pieces(plain(MiB, [3]), 0, 10 * MiB), [
    { offset: 0, length: 10 * MiB, target: { kind: 'ost', index: 3 }, component: 0, stripe: 0 },
  ]);
  const four = plain(MiB, [5, 6, 7, 0]);
  t.same(
    pieces(four, MiB / 2, 5 * MiB).map((p) => [p.offset, p.length, name(p.target)]),
    [
      [MiB / 2, MiB / 2, 'ost:5'],
      [MiB, MiB, 'ost:6'],
      [2 * MiB, MiB, 'ost:7'],
      [3 * MiB, MiB, 'ost:0'],
      [4 * MiB, MiB, 'ost:5'],
    ],
  );
  const sixteen = plain(
    4 * MiB,
    Array.from({ length: 16 }, (_, i) => 15 - i),
  );
  t.equal(name(targetAt(sixteen, 64 * MiB + 4 * MiB * 15)), 'ost:0');
  t.equal(name(targetAt(sixteen, 4 * MiB * 16 * 1000 + 1)), 'ost:15', 'round 1000, stripe 0');
});

t.test('a 3-component PFL layout: DoM, one stripe, then 4 stripes to EOF', async (t) => {
  const pfl: Layout = {
    composite: true,
    components: [
      comp({ start: 0, end: MiB, pattern: PATTERN.MDT, stripeSize: MiB, stripeCount: 0, osts: [] }),
      comp({ start: MiB, end: 64 * MiB, stripeSize: MiB, stripeCount: 1, osts: [2] }),
      comp({ start: 64 * MiB, end: null, stripeSize: 4 * MiB, stripeCount: 4, osts: [4, 5, 6, 7] }),
    ],
  };
  t.same(
    pieces(pfl, 0, 80 * MiB).map((p) => [p.offset, p.length, name(p.target)]),
    [
      [0, MiB, 'mdt'],
      [MiB, 63 * MiB, 'ost:2'],
      [64 * MiB, 4 * MiB, 'ost:4'],
      [68 * MiB, 4 * MiB, 'ost:5'],
      [72 * MiB, 4 * MiB, 'ost:6'],
      [76 * MiB, 4 * MiB, 'ost:7'],
    ],
  );
  const runs = [...stripeRuns(pfl, 100 * MiB, 16 * MiB)];
  t.same(
    runs.map((r) => [r.stream, r.bytes]),
    [
      ['mdt', MiB],
      ['ost:2', 16 * MiB],
      ['ost:4', 12 * MiB],
      ['ost:5', 8 * MiB],
      ['ost:6', 8 * MiB],
      ['ost:7', 8 * MiB],
      ['ost:2', 16 * MiB],
      ['ost:2', 16 * MiB],
      ['ost:2', 15 * MiB],
    ],
    'runs go round-robin over stripes; a short last round',
  );
});

t.test('a component not instantiated has no target; overstriping maps one OST to several stripes', async (t) => {
  const partial: Layout = {
    composite: true,
    components: [comp({ start: 0, end: 4 * MiB, osts: [1] }), comp({ start: 4 * MiB, end: null, flags: 0, osts: [] })],
  };
  t.same(
    pieces(partial, 0, 8 * MiB).map((p) => name(p.target)),
    ['ost:1', 'none'],
  );
  t.same(
    [...stripeRuns(partial, 8 * MiB, 64 * MiB)].map((r) => [r.stream, r.bytes]),
    [
      [undefined, 4 * MiB],
      ['ost:1', 4 * MiB],
    ],
  );
  const over: Layout = {
    composite: false,
    components: [comp({ pattern: PATTERN.OVERSTRIPING, stripeCount: 4, osts: [3, 3, 3, 3], flags: 0 })],
  };
  const runs = [...stripeRuns(over, 8 * MiB, 64 * MiB)];
  t.equal(runs.length, 4, 'one run per stripe');
  t.ok(
    runs.every((r) => r.stream === 'ost:3' && r.bytes === 2 * MiB),
    'all on OST 3',
  );
});

t.test('an FLR layout with two mirrors is read from the first only, every byte once', async (t) => {
  const mirrored: Layout = {
    composite: true,
    components: [
      comp({ start: 0, end: 4 * MiB, osts: [1] }),
      comp({ start: 4 * MiB, end: null, stripeCount: 2, osts: [2, 3] }),
      comp({ start: 0, end: null, stripeCount: 2, osts: [6, 7] }), // the second mirror
    ],
  };
  t.same(
    primaryMirror(mirrored).components.map((c) => c.osts),
    [[1], [2, 3]],
  );
  const runs = [...stripeRuns(mirrored, 10 * MiB, 64 * MiB)];
  t.equal(
    runs.reduce((n, r) => n + r.bytes, 0),
    10 * MiB,
    'the runs cover the file once',
  );
  t.notOk(
    runs.some((r) => r.stream === 'ost:6' || r.stream === 'ost:7'),
    'nothing from the replica',
  );
  t.same(
    pieces(mirrored, 0, 6 * MiB).map((p) => name(p.target)),
    ['ost:1', 'ost:2', 'ost:3'],
  );
});

t.test('ranges outside every component and bad ranges', async (t) => {
  const short: Layout = { composite: true, components: [comp({ start: 0, end: MiB, osts: [0] })] };
  t.same(
    pieces(short, 0, 2 * MiB).map((p) => [p.offset, name(p.target)]),
    [
      [0, 'ost:0'],
      [MiB, 'none'],
    ],
  );
  t.same(pieces(short, 5, 5), [], 'an empty range has no pieces');
  t.throws(() => pieces(short, 5, 4), RangeError);
  t.throws(() => pieces(short, -1, 4), RangeError);
  t.same([...stripeRuns(short, 0, MiB)], [], 'an empty file has no runs');
  t.throws(() => [...stripeRuns(short, 10, 0)], RangeError);
});

/** A random valid layout of small numbers, so every byte can be checked. */
function randomLayout(rand: () => number): Layout {
  const int = (n: number) => Math.floor(rand() * n);
  const count = 1 + int(3);
  const components: LayoutComponent[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const last = i === count - 1;
    const end = last && rand() < 0.7 ? null : start + 1 + int(200);
    const kind = rand();
    const stripeSize = 1 + int(17);
    const n = 1 + int(5);
    const osts = kind < 0.15 ? [] : Array.from({ length: n }, () => int(kind < 0.3 ? 2 : 8)); // none / overstriped / raid0
    components.push(
      kind > 0.9
        ? comp({ start, end, pattern: PATTERN.MDT, stripeSize, stripeCount: 0, osts: [] })
        : comp({ start, end, stripeSize, stripeCount: n, osts, flags: osts.length ? COMP_INIT : 0 }),
    );
    if (end === null) break;
    start = end;
  }
  return { composite: components.length > 1, components };
}

t.test('pieces() against the per-byte reference on 500 random layouts', async (t) => {
  const rand = prng(4);
  let bad = 0;
  for (let trial = 0; trial < 500; trial++) {
    const l = randomLayout(rand);
    const a = Math.floor(rand() * 300);
    const b = a + Math.floor(rand() * 400);
    const ps = pieces(l, a, b);
    let at = a;
    for (const p of ps) {
      if (p.offset !== at || p.length <= 0) bad++;
      for (let x = p.offset; x < p.offset + p.length; x++) if (targetOfByte(l, x) !== name(p.target)) bad++;
      at = p.offset + p.length;
    }
    if (at !== b) bad++;
  }
  t.equal(bad, 0, 'every byte of every range maps to the reference target, and the pieces cover it exactly');
});

t.test('stripeRuns() covers every byte exactly once, each run on its stream, runs bounded', async (t) => {
  const rand = prng(7);
  let bad = 0;
  for (let trial = 0; trial < 500; trial++) {
    const l = randomLayout(rand);
    const size = Math.floor(rand() * 600);
    const max = 1 + Math.floor(rand() * 60);
    const seen = new Uint8Array(size);
    for (const run of stripeRuns(l, size, max)) {
      let sum = 0;
      for (const r of run.ranges) {
        sum += r.length;
        for (let x = r.offset; x < r.offset + r.length; x++) {
          seen[x]!++;
          const want = targetOfByte(l, x);
          if ((run.stream ?? 'none') !== want) bad++;
        }
      }
      if (sum !== run.bytes) bad++;
      // At most max bytes, unless one stripe piece alone is bigger.
      if (run.bytes > max && run.bytes > Math.max(...l.components.map((c) => c.stripeSize))) bad++;
    }
    if (seen.some((n) => n !== 1)) bad++;
  }
  t.equal(bad, 0);
});

t.test('resetOsts, sameStriping', async (t) => {
  const l = plain(MiB, [1, 2]);
  const r = resetOsts({ composite: true, components: [comp({ osts: [4], flags: COMP_INIT | 0x2 })] });
  t.same(r.components[0]!.osts, []);
  t.equal(r.components[0]!.flags, 0x2, 'only the INIT flag goes');
  t.ok(sameStriping(l, { ...l, components: [{ ...l.components[0]!, osts: [7, 0] }] }), 'OSTs do not count');
  t.notOk(sameStriping(l, plain(2 * MiB, [1, 2])));
  t.notOk(sameStriping(l, plain(MiB, [1])));
});

t.test('setstripe specs', async (t) => {
  t.same(parseLayoutSpec('-c 4 -S 1M -p flash'), {
    composite: false,
    components: [comp({ stripeCount: 4, stripeSize: MiB, pool: 'flash', flags: 0, osts: [] })],
  });
  const pfl = parseLayoutSpec('-E 1M -L mdt -E 64M -c 1 -E -1 -c -1 -S 4M');
  t.equal(pfl.composite, true);
  t.same(
    pfl.components.map((c) => [c.start, c.end, c.pattern, c.stripeCount, c.stripeSize]),
    [
      [0, MiB, PATTERN.MDT, 0, 0],
      [MiB, 64 * MiB, 0, 1, 0],
      [64 * MiB, null, 0, -1, 4 * MiB],
    ],
  );
  t.same(parseLayoutSpec('-o 3,1').components[0]!.osts, [3, 1]);
  t.equal(parseLayoutSpec('-C 16').components[0]!.pattern, PATTERN.OVERSTRIPING);
  for (const bad of ['', '-c', '-c x', '-S 1000', '-E 1M -c 1 -c', '-q 1', '-E 0', '-E -1 -E 2M', '-c 1 -E 1M']) {
    t.throws(() => parseLayoutSpec(bad), RangeError, `refused: '${bad}'`);
  }
});

t.test('getstripe text', async (t) => {
  t.equal(
    formatLayout('f', plain(MiB, [2, 3])),
    'f\nlmm_stripe_count:  2\nlmm_stripe_size:   1048576\nlmm_pattern:       raid0\nlmm_stripe_offset: 2\n\tobdidx\t\n\t2\t\n\t3\t\n',
  );
  const text = formatLayout('g', parseLayoutSpec('-E 1M -L mdt -E -1 -c 2'));
  t.match(text, /lcm_entry_count: {3}2/);
  t.match(text, /lcme_extent.e_end: {3}EOF/);
  t.match(text, /lmm_pattern: {7}mdt/);
});
