// The Layout model: how a file's bytes are spread over Lustre's storage targets, as plain data
// (it crosses worker boundaries and goes into manifests), and the pure function that says which
// target holds any byte range. No I/O here: the addon reads and creates layouts (src/native.ts).

/** lov pattern bits (liblustreapi LLAPI_LAYOUT_*). */
export const PATTERN = { RAID0: 0, MDT: 2, OVERSTRIPING: 4 } as const;
/** lcme_flags: the component is instantiated (its objects exist). */
export const COMP_INIT = 0x10;

export interface LayoutComponent {
  /** The component covers file bytes [start, end); end null = to the end of the file. */
  start: number;
  end: number | null;
  /** PATTERN bits: RAID0 0, MDT 2 (data on the MDT), OVERSTRIPING 4 (an OST may hold several stripes). */
  pattern: number;
  /** Bytes per stripe; 0 = the file system's default. */
  stripeSize: number;
  /** Stripes; 0 = the file system's default, -1 = every OST (as `lfs setstripe -c`). */
  stripeCount: number;
  /** lcme_flags (COMP_INIT ...); 0 for a plain layout. */
  flags: number;
  /** OST pool, '' for none. */
  pool: string;
  /** The OST of each stripe, in stripe order; empty when not instantiated (or left to Lustre). */
  osts: number[];
}

export interface Layout {
  /** A PFL (composite) layout, as opposed to a plain one (one component over the whole file). */
  composite: boolean;
  components: LayoutComponent[];
}

/** Where a piece of a file lives. */
export type Target =
  | { kind: 'ost'; index: number }
  | { kind: 'mdt' }
  /** In a component with no objects yet (nothing was written there) or a layout we cannot map. */
  | { kind: 'none' };

export interface Piece {
  offset: number;
  length: number;
  target: Target;
  /** Which component and stripe (index into its osts) the piece is in; -1 for 'none' and 'mdt'. */
  component: number;
  stripe: number;
}

export const componentEnd = (c: LayoutComponent): number => c.end ?? Infinity;

/**
 * The layout's first mirror: its components in file order, without the overlapping ones that
 * further FLR mirrors add (each mirror covers the file again from 0). Reading one mirror reads
 * every byte once; a copy gets one mirror, not the replicas.
 */
export function primaryMirror(layout: Layout): Layout {
  const sorted = layout.components.map((c, i) => ({ c, i })).sort((x, y) => x.c.start - y.c.start || x.i - y.i);
  const kept: LayoutComponent[] = [];
  let covered = 0;
  for (const { c } of sorted) {
    if (c.start < covered) continue;
    kept.push(c);
    covered = componentEnd(c);
  }
  return kept.length === layout.components.length ? layout : { composite: layout.composite, components: kept };
}

/** Whether the component's stripes can be mapped: data on the MDT, or instantiated with its OSTs known. */
export function isMapped(c: LayoutComponent): boolean {
  if (c.pattern & PATTERN.MDT) return true;
  return c.stripeSize > 0 && c.osts.length > 0;
}

/** A stream key for scheduling: 'ost:N', 'mdt', or undefined for a piece no target is known for. */
export function targetStream(t: Target): string | undefined {
  return t.kind === 'ost' ? `ost:${t.index}` : t.kind === 'mdt' ? 'mdt' : undefined;
}

const sameTarget = (a: Target, b: Target) =>
  a.kind === b.kind && (a.kind !== 'ost' || a.index === (b as { index: number }).index);

/**
 * The pieces of byte range [a, b) in file order, each on one target: the exact cover of [a, b),
 * cut at stripe and component boundaries, with consecutive pieces of the same stripe merged (a
 * component of one stripe is one piece). Bytes outside every component are 'none'.
 */
export function pieces(layout: Layout, a: number, b: number): Piece[] {
  if (!(Number.isSafeInteger(a) && a >= 0 && (Number.isSafeInteger(b) || b === Infinity) && b >= a)) {
    throw new RangeError(`invalid byte range [${a}, ${b})`);
  }
  const out: Piece[] = [];
  const push = (p: Piece) => {
    const last = out[out.length - 1];
    if (
      last &&
      last.offset + last.length === p.offset &&
      sameTarget(last.target, p.target) &&
      last.component === p.component &&
      last.stripe === p.stripe
    ) {
      last.length += p.length;
    } else {
      out.push(p);
    }
  };
  let at = a;
  const primary = primaryMirror(layout);
  const comps = primary.components;
  for (let ci = 0; ci < comps.length && at < b; ci++) {
    const c = comps[ci]!;
    const end = Math.min(componentEnd(c), b);
    if (end <= at) continue;
    if (c.start > at) {
      push({ offset: at, length: Math.min(c.start, b) - at, target: { kind: 'none' }, component: -1, stripe: -1 });
      at = Math.min(c.start, b);
      if (at >= b) break;
    }
    const index = primary.components.indexOf(c);
    if (!isMapped(c)) {
      push({ offset: at, length: end - at, target: { kind: 'none' }, component: index, stripe: -1 });
    } else if (c.pattern & PATTERN.MDT) {
      push({ offset: at, length: end - at, target: { kind: 'mdt' }, component: index, stripe: -1 });
    } else {
      const n = c.osts.length;
      const size = c.stripeSize;
      while (at < end) {
        const r = at - c.start;
        const stripe = Math.floor(r / size) % n;
        const stop = Math.min(end, at + (size - (r % size)));
        push({
          offset: at,
          length: stop - at,
          target: { kind: 'ost', index: c.osts[stripe]! },
          component: index,
          stripe,
        });
        at = stop;
      }
    }
    at = end;
  }
  if (at < b) push({ offset: at, length: b - at, target: { kind: 'none' }, component: -1, stripe: -1 });
  return out;
}

/** The target of the byte at offset (what a small file is scheduled by: its first byte). */
export function targetAt(layout: Layout, offset: number): Target {
  return pieces(layout, offset, offset + 1)[0]!.target;
}

export interface StripeRun {
  /** The stream of these bytes: 'ost:N', 'mdt', or undefined (no known target). */
  stream: string | undefined;
  /** Byte ranges in file order, all in the same stripe (adjacent ones merged: one stripe = contiguous). */
  ranges: { offset: number; length: number }[];
  bytes: number;
}

/**
 * The bytes [0, size) of a file grouped by the stripe they live in, each group cut into runs of
 * at most maxBytes (but at least one stripe piece), runs listed round-robin across stripes so
 * that a consumer taking them in order keeps every OST busy. The union of all runs' ranges is
 * exactly [0, size); no two overlap. Lazy: a file of millions of stripes is never listed whole.
 */
export function* stripeRuns(layout: Layout, size: number, maxBytes: number): Generator<StripeRun> {
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) throw new RangeError(`invalid run size ${maxBytes}`);
  if (size === 0) return;
  // Each group: one stripe of one component (or one unmapped/MDT region), walked lazily.
  const groups: (() => StripeRun | undefined)[] = [];
  const comps = primaryMirror(layout).components;
  // Regions not covered by a striped component come from pieces() (none/mdt), in maxBytes runs.
  const regions = pieces(layout, 0, size).filter((p) => p.stripe < 0);
  for (const region of regions) {
    let at = region.offset;
    const stop = region.offset + region.length;
    groups.push(() => {
      if (at >= stop) return undefined;
      const length = Math.min(maxBytes, stop - at);
      const run = { stream: targetStream(region.target), ranges: [{ offset: at, length }], bytes: length };
      at += length;
      return run;
    });
  }
  comps.forEach((c) => {
    if (!isMapped(c) || c.pattern & PATTERN.MDT) return;
    const end = Math.min(componentEnd(c), size);
    if (end <= c.start) return;
    const n = c.osts.length;
    const width = c.stripeSize * n;
    for (let stripe = 0; stripe < n; stripe++) {
      let round = 0;
      const stream = `ost:${c.osts[stripe]!}`;
      groups.push(() => {
        const ranges: { offset: number; length: number }[] = [];
        let bytes = 0;
        for (;;) {
          const offset = c.start + round * width + stripe * c.stripeSize;
          if (offset >= end || (bytes > 0 && bytes + Math.min(c.stripeSize, end - offset) > maxBytes)) break;
          const length = Math.min(c.stripeSize, end - offset);
          const last = ranges[ranges.length - 1];
          if (last && last.offset + last.length === offset) last.length += length;
          else ranges.push({ offset, length });
          bytes += length;
          round++;
        }
        return ranges.length > 0 ? { stream, ranges, bytes } : undefined;
      });
    }
  });
  // Round-robin over the groups until each is exhausted.
  let live = groups;
  while (live.length > 0) {
    const next: typeof groups = [];
    for (const g of live) {
      const run = g();
      if (run) {
        yield run;
        next.push(g);
      }
    }
    live = next;
  }
}

/** Drops OST indices and instantiation, so a file created from the result is placed afresh. */
export function resetOsts(layout: Layout): Layout {
  return {
    composite: layout.composite,
    components: layout.components.map((c) => ({ ...c, flags: c.flags & ~COMP_INIT, osts: [] })),
  };
}

/** Two layouts describe the same striping (extents, pattern, sizes, counts, pool), OSTs aside. */
export function sameStriping(a: Layout, b: Layout): boolean {
  if (a.composite !== b.composite || a.components.length !== b.components.length) return false;
  return a.components.every((x, i) => {
    const y = b.components[i]!;
    return (
      x.start === y.start &&
      x.end === y.end &&
      x.pattern === y.pattern &&
      x.stripeSize === y.stripeSize &&
      x.stripeCount === y.stripeCount &&
      x.pool === y.pool
    );
  });
}
