// Layouts as users write and read them: `lfs setstripe` options in, `lfs getstripe` text out.
import { PATTERN, COMP_INIT, type Layout, type LayoutComponent } from './model.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

function size(text: string, what: string): number {
  const m = /^(\d+)([kmgt]?)$/i.exec(text);
  if (!m) throw new RangeError(`${what}: expected a size like 1M or 4194304, got '${text}'`);
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what}: ${text} is too large`);
  return n;
}

function count(text: string, what: string): number {
  if (!/^(-1|\d+)$/.test(text)) throw new RangeError(`${what}: expected a number or -1, got '${text}'`);
  return Number(text);
}

const blank = (start: number): LayoutComponent => ({
  start,
  end: null,
  pattern: PATTERN.RAID0,
  stripeSize: 0,
  stripeCount: 0,
  flags: 0,
  pool: '',
  osts: [],
});

/**
 * A layout from `lfs setstripe` options: `-c 4 -S 1M [-p pool] [-o 2,3]`, `-C 16` (overstriping),
 * `-L mdt` (data on the MDT), and PFL components each opened by `-E <end>` (`-1` or `eof` for the
 * last): `-E 64M -L mdt -E 1G -c 1 -E -1 -c -1 -S 4M`. Throws a RangeError naming the bad option.
 */
export function parseLayoutSpec(spec: string): Layout {
  const tokens = spec.trim().split(/\s+/).filter(Boolean);
  if (tokens.length === 0) throw new RangeError('empty layout spec');
  const composite = tokens[0] === '-E' || tokens[0] === '--component-end';
  const comps: LayoutComponent[] = [];
  let c = blank(0);
  if (!composite) comps.push(c);
  for (let i = 0; i < tokens.length; i++) {
    const opt = tokens[i]!;
    const arg = tokens[i + 1];
    if (arg === undefined) throw new RangeError(`layout spec: ${opt} needs a value`);
    i++;
    switch (opt) {
      case '-E':
      case '--component-end': {
        if (!composite) throw new RangeError('layout spec: -E must open every component of a PFL layout');
        const start = comps.length === 0 ? 0 : comps[comps.length - 1]!.end;
        if (start === null) throw new RangeError('layout spec: a component follows one that ends at eof');
        c = blank(start);
        c.end = arg === '-1' || arg === 'eof' ? null : size(arg, '-E');
        if (c.end !== null && c.end <= start)
          throw new RangeError(`layout spec: -E ${arg} does not extend past ${start}`);
        comps.push(c);
        break;
      }
      case '-c':
      case '--stripe-count':
        c.stripeCount = count(arg, opt);
        break;
      case '-C':
      case '--overstripe-count':
        c.stripeCount = count(arg, opt);
        c.pattern = PATTERN.OVERSTRIPING;
        break;
      case '-S':
      case '--stripe-size':
        c.stripeSize = size(arg, opt);
        if (c.stripeSize % 65536 !== 0) throw new RangeError(`layout spec: ${opt} must be a multiple of 64K`);
        break;
      case '-p':
      case '--pool':
        if (!/^[\w.-]{1,15}$/.test(arg)) throw new RangeError(`layout spec: bad pool name '${arg}'`);
        c.pool = arg;
        break;
      case '-o':
      case '--ost':
        c.osts = arg.split(',').map((x) => count(x, opt));
        if (c.stripeCount === 0) c.stripeCount = c.osts.length;
        break;
      case '-L':
      case '--layout':
        if (arg !== 'mdt' && arg !== 'raid0') throw new RangeError(`layout spec: -L takes mdt or raid0, got '${arg}'`);
        c.pattern = arg === 'mdt' ? PATTERN.MDT : PATTERN.RAID0;
        break;
      default:
        throw new RangeError(`layout spec: unknown option '${opt}'`);
    }
  }
  return { composite, components: comps };
}

const PATTERN_NAMES: [number, string][] = [
  [PATTERN.MDT, 'mdt'],
  [PATTERN.OVERSTRIPING, 'overstriped'],
];

export function patternName(pattern: number): string {
  const names = PATTERN_NAMES.filter(([bit]) => pattern & bit).map(([, n]) => n);
  return names.length > 0 ? names.join(',') : 'raid0';
}

const flagNames = (flags: number) => (flags & COMP_INIT ? 'init' : '0');
const num = (n: number) => (n === 0 ? 'default' : String(n));

/** `lfs getstripe` text of one file's layout (the path line first). */
export function formatLayout(path: string, l: Layout): string {
  const lines: string[] = [path];
  const stripes = (c: LayoutComponent, indent: string) => {
    lines.push(`${indent}lmm_stripe_count:  ${c.stripeCount === -1 ? -1 : num(c.stripeCount)}`);
    lines.push(`${indent}lmm_stripe_size:   ${num(c.stripeSize)}`);
    lines.push(`${indent}lmm_pattern:       ${patternName(c.pattern)}`);
    if (c.pool) lines.push(`${indent}lmm_pool:          ${c.pool}`);
    if (c.osts.length > 0) {
      lines.push(`${indent}lmm_stripe_offset: ${c.osts[0]}`);
      lines.push(`${indent}\tobdidx\t`);
      for (const o of c.osts) lines.push(`${indent}\t${o}\t`);
    } else {
      lines.push(`${indent}lmm_stripe_offset: -1`);
    }
  };
  if (!l.composite) {
    stripes(l.components[0]!, '');
    return lines.join('\n') + '\n';
  }
  lines.push(`  lcm_entry_count:   ${l.components.length}`);
  l.components.forEach((c, i) => {
    lines.push(`    lcme_id:             ${i + 1}`);
    lines.push(`    lcme_flags:          ${flagNames(c.flags)}`);
    lines.push(`    lcme_extent.e_start: ${c.start}`);
    lines.push(`    lcme_extent.e_end:   ${c.end === null ? 'EOF' : c.end}`);
    stripes(c, '      ');
    lines.push('');
  });
  return lines.join('\n') + '\n';
}
