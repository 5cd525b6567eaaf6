// The per-stream scheduler: caps per stream and overall, the idlest stream first, rotation among
// equals, and submit() holding back when too much is queued. Units finish when the test says.
import t from 'tap';
import { StreamScheduler } from '../src/engine/scheduler.js';

interface Unit {
  stream: string;
  id: number;
}

/** A scheduler whose units run until release(id); records the order they started in. */
function harness(options: { maxRunning: number; maxPerStream: number; maxQueued: number }) {
  const started: Unit[] = [];
  const release = new Map<number, () => void>();
  const done: number[] = [];
  const s = new StreamScheduler<Unit, number>(
    options,
    (u) => {
      started.push(u);
      return new Promise<number>((resolve) => release.set(u.id, () => resolve(u.id)));
    },
    (u) => done.push(u.id),
  );
  const finish = async (id: number) => {
    release.get(id)!();
    await new Promise((r) => setImmediate(r));
  };
  const running = () => started.filter((u) => !done.includes(u.id));
  return { s, started, finish, running, done };
}

t.test('a free slot goes to the idlest stream with work, never past a cap', async (t) => {
  const h = harness({ maxRunning: 4, maxPerStream: 2, maxQueued: 100 });
  let id = 0;
  for (const st of ['ost:A', 'ost:B', 'ost:C']) for (let i = 0; i < 4; i++) await h.s.submit({ stream: st, id: id++ });
  const perStream = () => {
    const m: Record<string, number> = {};
    for (const u of h.running()) m[u.stream] = (m[u.stream] ?? 0) + 1;
    return m;
  };
  t.same(perStream(), { 'ost:A': 2, 'ost:B': 2 }, 'A and B at their cap; C waits for a slot');
  // A unit of A finishes: C (idle) is preferred to A (1 running) and B (at its cap).
  await h.finish(0);
  t.same(perStream(), { 'ost:A': 1, 'ost:B': 2, 'ost:C': 1 });
  // One of B: A and B have 1 running, as C: the next after C in rotation, A.
  await h.finish(4);
  t.same(perStream(), { 'ost:A': 2, 'ost:B': 1, 'ost:C': 1 });
  t.ok(
    h.started.every((_, i) => {
      const m: Record<string, number> = {};
      for (const u of h.started.slice(0, i + 1)) if (!h.done.includes(u.id)) m[u.stream] = (m[u.stream] ?? 0) + 1;
      return Object.values(m).every((n) => n <= 2);
    }),
    'never more than 2 on a stream',
  );
  while (h.running().length > 0) await h.finish(h.running()[0]!.id);
  await h.s.drain();
  t.equal(h.done.length, 12, 'every unit ran once');
  t.equal(new Set(h.started.map((u) => u.id)).size, 12);
});

t.test('equal streams take turns', async (t) => {
  const h = harness({ maxRunning: 1, maxPerStream: 1, maxQueued: 100 });
  let id = 0;
  for (let i = 0; i < 3; i++) for (const st of ['x', 'y', 'z']) await h.s.submit({ stream: st, id: id++ });
  while (h.running().length > 0) await h.finish(h.running()[0]!.id);
  await h.s.drain();
  t.same(
    h.started.map((u) => u.stream),
    ['x', 'y', 'z', 'x', 'y', 'z', 'x', 'y', 'z'],
  );
});

t.test('submit() waits while maxQueued units are waiting', async (t) => {
  const h = harness({ maxRunning: 1, maxPerStream: 1, maxQueued: 2 });
  await h.s.submit({ stream: 'a', id: 0 }); // runs
  await h.s.submit({ stream: 'a', id: 1 }); // queued
  await h.s.submit({ stream: 'a', id: 2 }); // queued: the queue is full now
  let third = false;
  const p = h.s.submit({ stream: 'a', id: 3 }).then(() => (third = true));
  await new Promise((r) => setImmediate(r));
  t.equal(third, false, 'held back');
  await h.finish(0);
  await p;
  t.equal(third, true, 'let in once a unit started');
  for (const i of [1, 2, 3]) await h.finish(i);
  await h.s.drain();
  t.same(h.done, [0, 1, 2, 3]);
});

t.test('settle() starts nothing more and waits for what runs; execute() throwing fails its unit only', async (t) => {
  const h = harness({ maxRunning: 2, maxPerStream: 2, maxQueued: 100 });
  for (let id = 0; id < 5; id++) await h.s.submit({ stream: 'dev', id });
  t.equal(h.running().length, 2);
  let settled = false;
  const settling = h.s.settle().then(() => (settled = true));
  await h.finish(0);
  t.notOk(settled, 'unit 1 still runs');
  t.equal(h.started.length, 2, 'nothing new started');
  await h.finish(1);
  await settling;
  t.same(h.done, [0, 1]);

  const errors: unknown[] = [];
  const s = new StreamScheduler<Unit, number>(
    { maxRunning: 1, maxPerStream: 1, maxQueued: 10 },
    (u) => {
      if (u.id === 0) throw new Error('paths cannot be made');
      return Promise.resolve(u.id);
    },
    (_u, _r, e) => errors.push(e),
  );
  await s.submit({ stream: 'dev', id: 0 });
  await s.submit({ stream: 'dev', id: 1 });
  await s.drain();
  t.match(errors, [{ message: 'paths cannot be made' }, undefined]);
});
