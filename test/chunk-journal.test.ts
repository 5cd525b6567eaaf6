// The resume journal of a large file: when a rerun may trust it, and when it must start afresh
// (a journal of another source version, of an older format, or one whose temporary file is gone).
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ChunkJournal } from '../src/engine/chunk-journal.js';
import type { Entry } from '../src/model/entry.js';
import { diskDir } from './helpers/fixtures.js';

const entry = (size: number, mtimeNs = 1_000_000_000_123n) => ({ size, mtimeNs, ctimeNs: mtimeNs }) as Entry;

t.test('a journal is trusted only for the same version, format and temporary file', (t) => {
  const dir = diskDir(t);
  const file = Buffer.from(path.join(dir, 'big.journal'));
  const e = entry(3 << 20);
  let made = 0;
  const create = (cloned: boolean) => () => {
    made++;
    return cloned;
  };

  const j = ChunkJournal.open(file, false, e, 'contiguous/1048576', false, create(true));
  t.equal(made, 1, 'made afresh');
  t.ok(j.cloned);
  j.record(0, 'aaaa');
  j.record(1 << 20, 'bbbb');
  j.close(false);

  const again = ChunkJournal.open(file, true, e, 'contiguous/1048576', false, create(false));
  t.equal(made, 1, 'resumed: the temporary file is not made again');
  t.ok(again.cloned, 'and it is still known to be a clone');
  t.same(
    [...again.done],
    [
      [0, 'aaaa'],
      [1 << 20, 'bbbb'],
    ],
  );
  again.close(false);

  // A run without reflinks (--no-reflink) does not carry on a clone: it makes the file afresh.
  const plain = ChunkJournal.open(file, true, e, 'contiguous/1048576', false, create(false), false);
  t.equal(made, 2, 'no reflinks: a clone is made afresh');
  t.notOk(plain.cloned);
  t.same(plain.done.size, 0);
  plain.close(false);

  for (const [why, e2, cut] of [
    ['another source version', entry(3 << 20, 5n), 'contiguous/1048576'],
    ['another cut', e, 'stripes/1048576'],
  ] as const) {
    const other = ChunkJournal.open(file, true, e2, cut, false, create(false));
    t.same(other.done.size, 0, `${why}: afresh`);
    t.notOk(other.cloned);
    other.close(false);
  }

  // A journal an older version wrote (no format number, no word on clones) is not trusted: its
  // temporary file may be a clone, or made after the journal and never sized.
  writeFileSync(
    file,
    JSON.stringify({ size: e.size, mtimeNs: String(e.mtimeNs), ctimeNs: String(e.ctimeNs), cut: 'x' }) + '\n0 aaaa\n',
  );
  const before = made;
  const old = ChunkJournal.open(file, true, e, 'x', false, create(false));
  t.equal(made, before + 1, 'an older journal: the temporary file is made afresh');
  t.same(old.done.size, 0);
  old.close(false);
  t.end();
});

t.test('a journal never outlives the temporary file it describes', (t) => {
  const dir = diskDir(t);
  const file = Buffer.from(path.join(dir, 'big.journal'));
  const e = entry(2 << 20);
  const j = ChunkJournal.open(file, false, e, 'c', false, () => false);
  j.record(0, 'aaaa');
  j.close(false);
  // The temporary file is gone, and making it again fails midway: the old journal, whose chunk
  // is no longer anywhere, must not be there for the next run to trust.
  t.throws(() =>
    ChunkJournal.open(file, false, e, 'c', false, () => {
      throw new Error('ENOSPC');
    }),
  );
  t.notOk(existsSync(file), 'no journal left');
  const next = ChunkJournal.open(file, true, e, 'c', false, () => false);
  t.same(next.done.size, 0);
  next.close(true);
  t.notOk(existsSync(file), 'close(true) removes it');
  t.end();
});
