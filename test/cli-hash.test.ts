// `stripemover hash` end to end: the CLI's output equals xxhsum's, byte names included.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskDir, writeRandom, xxhsum } from './helpers/fixtures.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stripemover.js');

/** Runs the CLI through sh so that arguments can be raw bytes (printf escapes). */
function cli(script: string) {
  return spawnSync('sh', ['-c', `exec "${process.execPath}" "${bin}" ${script}`], { encoding: 'buffer' });
}

t.test('hash prints xxhsum -H1 lines, keeps non-UTF-8 names, and fails per file', async (t) => {
  const dir = diskDir(t);
  const plain = path.join(dir, 'plain');
  writeRandom(plain, 5_000_000, 2);
  const odd = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x61, 0xff, 0x62])]);
  writeRandom(odd, 10, 3);
  const twin = path.join(dir, 'twin'); // same bytes under a name xxhsum can be given from here
  writeRandom(twin, 10, 3);
  const r = cli(`hash --direct "${plain}" "$(printf '${dir}/a\\377b')" "${dir}/missing"`);
  t.equal(r.status, 1, 'exit 1: one file failed');
  const expected = Buffer.concat([
    Buffer.from(`${xxhsum(plain)}  ${plain}\n${xxhsum(twin)}  `),
    odd,
    Buffer.from('\n'),
  ]);
  t.ok(r.stdout.equals(expected), 'stdout is exactly what xxhsum prints, raw name bytes included');
  t.match(r.stderr.toString(), /ENOENT: No such file or directory, open '.*\/missing'/);
});

t.test('usage errors exit 2', async (t) => {
  t.equal(cli('hash').status, 2);
  t.equal(cli('no-such-command').status, 2);
  t.equal(cli('--version').status, 0);
});
