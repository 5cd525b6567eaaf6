// Lustre in the engine: whether a root is on Lustre, the layouts of the source's files (read in
// batches on the libuv pool, between the scan and the planner), and the layout each new file
// gets on a Lustre destination.
import { dirname } from 'node:path';
import { native } from '../native.js';
import { primaryMirror, resetOsts, type Layout } from '../layout/model.js';
import type { Entry } from '../model/entry.js';
import type { TreeRoot } from '../targets/posix/paths.js';

export type LayoutPolicy = 'reset' | 'keep' | 'inherit' | Layout;

/**
 * The xattr in which a copy off Lustre records its source's layout (JSON of Layout), so that a
 * later copy back onto any Lustre recreates it (native/src/lustre.h has the same name).
 */
export const LAYOUT_RECORD_XATTR = 'user.stripemover.layout';

/** How a root relates to Lustre; `warning` says why layouts cannot be used although it is Lustre. */
export interface LustreRoot {
  lustre: boolean;
  warning?: string;
}

/** Whether path (or, if it does not exist yet, its nearest existing ancestor) is on a usable Lustre. */
export function lustreRoot(path: Buffer): LustreRoot {
  let p = path.toString('latin1');
  for (;;) {
    try {
      if (!native.lustre.isLustre(Buffer.from(p, 'latin1'))) return { lustre: false };
      const st = native.lustre.status();
      if (!st.loaded) {
        return {
          lustre: false,
          warning: `on Lustre, but ${st.library} could not be loaded (${st.error}): layouts not kept`,
        };
      }
      return { lustre: true };
    } catch (err) {
      const parent = dirname(p);
      if ((err as { code?: string }).code !== 'ENOENT' || parent === p) return { lustre: false };
      p = parent;
    }
  }
}

const BATCH = 256;

/** The scan's entries with `layout` set on regular files, in the same order. */
export async function* lustreLayouts(entries: AsyncIterable<Entry>, root: TreeRoot): AsyncGenerator<Entry> {
  let batch: Entry[] = [];
  const flush = async function* () {
    const files = batch.filter((e) => e.type === 'file');
    const found = files.length > 0 ? await native.lustre.layoutsAsync(files.map((e) => root.path(e.path))) : [];
    // A file whose layout cannot be read (e.g. on another file system mounted below) is copied
    // all the same, planned like a file off Lustre.
    found.forEach((l, i) => {
      if (!(l instanceof Error)) files[i]!.layout = l;
    });
    yield* batch;
    batch = [];
  };
  for await (const e of entries) {
    batch.push(e);
    if (batch.length >= BATCH) yield* flush();
  }
  yield* flush();
}

/** The scan's entries with `layout` set from the layout recorded by an earlier copy off Lustre. */
export async function* recordedLayouts(entries: AsyncIterable<Entry>, root: TreeRoot): AsyncGenerator<Entry> {
  for await (const e of entries) {
    if (e.type === 'file') {
      try {
        e.layout = JSON.parse(native.getXattr(root.path(e.path), LAYOUT_RECORD_XATTR).toString()) as Layout;
      } catch {
        // none recorded (or unreadable): the destination directory's default applies
      }
    }
    yield e;
  }
}

export interface DestinationLayouts {
  /** The destination is Lustre and the policy sets layouts. */
  active: boolean;
  keepOsts: boolean;
  /** The layout a new file is created with; undefined for the destination directory's default. */
  of(e: Entry): Layout | undefined;
  /** Off Lustre: what to record of the file's layout (JSON), if it has one. */
  record(e: Entry): string | undefined;
}

export function destinationLayouts(policy: LayoutPolicy, destinationIsLustre: boolean): DestinationLayouts {
  const active = destinationIsLustre && policy !== 'inherit';
  // A spec's OSTs (-o) are the user's choice; without them Lustre chooses anyway.
  const keepOsts = policy === 'keep' || typeof policy === 'object';
  const of = (e: Entry): Layout | undefined => {
    if (!active) return undefined;
    if (typeof policy === 'object') return policy;
    if (!e.layout) return undefined;
    const one = primaryMirror(e.layout); // FLR replicas are Lustre's to resync, not ours to copy
    return keepOsts ? one : resetOsts(one);
  };
  const record = (e: Entry) => (!destinationIsLustre && e.layout ? JSON.stringify(e.layout) : undefined);
  return { active, keepOsts, of, record };
}
