// ReverseSpool gives back what it was given, last first, across its spill to disk.
import t from 'tap';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { ReverseSpool } from '../src/engine/reverse-spool.js';

const spools = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('stripemover-spool-')).length;

t.test('last in, first out, in memory and spilled, with any bytes', async (t) => {
  const before = spools();
  for (const [count, limit] of [
    [0, 4],
    [3, 4],
    [4, 4],
    [1000, 7],
    [10, 1],
  ] as const) {
    const spool = new ReverseSpool(limit);
    const items = Array.from({ length: count }, (_, i) =>
      Buffer.from([i & 0xff, 0xff, 0x0a, ...Buffer.from(`d/${i}`)]),
    );
    items.push(Buffer.alloc(0)); // the root's empty path
    for (const item of items) spool.push(item);
    const back = [...spool.drain()];
    t.same(back, items.reverse(), `${count} items, ${limit} in memory`);
  }
  t.equal(spools(), before, 'spill files removed');
});

t.test('close() removes a spill file that was not drained', async (t) => {
  const before = spools();
  const spool = new ReverseSpool(2);
  for (let i = 0; i < 5; i++) spool.push(Buffer.from(String(i)));
  t.equal(spools(), before + 1);
  spool.close();
  t.equal(spools(), before);
});
