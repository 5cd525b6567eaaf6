// The filter stage: rsync's include/exclude pattern semantics, size limits, rule files and sizes,
// checked against a table of rsync behaviours and, where rsync is installed, against rsync itself.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EntryType } from '../src/model/entry.js';
import { Filter, parseRuleLines, parseSize, readRuleFile, type FilterRule } from '../src/filter/index.js';
import { compileGlob, wildmatch } from '../src/filter/rules.js';
import { diskDir, prng } from './helpers/fixtures.js';

/** Rules written as rsync's short forms: '- pattern' excludes, '+ pattern' includes. */
function rules(...lines: string[]): FilterRule[] {
  return lines.map((l) => {
    if (!/^[+-] /.test(l)) throw new Error(`bad test rule ${l}`);
    return { action: l[0] === '+' ? 'include' : 'exclude', pattern: l.slice(2) };
  });
}

function entry(p: string | Buffer, type: EntryType = 'file', size = 0) {
  return { path: typeof p === 'string' ? Buffer.from(p) : p, type, size };
}

/** [rules, path, excluded]: what rsync does with each path; a path ending in '/' is a directory. */
const TABLE: [string[], string, boolean][] = [
  // A pattern without '/' matches the name, at any depth.
  [['- *.tmp'], 'x.tmp', true],
  [['- *.tmp'], 'a/b/x.tmp', true],
  [['- *.tmp'], 'a/b/x.tmp.keep', false],
  [['- *.tmp'], 'x.tmp/', true],
  [['- *.tmp'], 'dir.tmp/inner', false], // only the name counts (the scan skips an excluded dir's subtree)
  [['- core'], 'core', true],
  [['- core'], 'a/core', true],
  [['- core'], 'a/core.1', false],
  [['- core'], 'acore', false],
  // A leading '/' anchors at the transfer root.
  [['- /top'], 'top', true],
  [['- /top'], 'top/', true],
  [['- /top'], 'sub/top', false],
  [['- /a/b'], 'a/b', true],
  [['- /a/b'], 'x/a/b', false],
  [['- /*.c'], 'x.c', true],
  [['- /*.c'], 'd/x.c', false],
  // An inner '/' matches the last components of the path, on a component boundary.
  [['- a/b'], 'a/b', true],
  [['- a/b'], 'x/a/b', true],
  [['- a/b'], 'xa/b', false],
  [['- a/b'], 'a/b/c', false],
  [['- a/*'], 'x/a/anything', true],
  [['- a/*'], 'xa/anything', false],
  [['- a/*'], 'a/b/c', false],
  [['- a/?/c'], 'z/a/b/c', true],
  [['- a/?/c'], 'a/bb/c', false],
  [['- */deep/*.o'], 'p/q/deep/y.o', true],
  [['- */deep/*.o'], 'deep/y.o', false], // '*' needs a component of its own
  // A trailing '/' matches directories only.
  [['- dir/'], 'dir/', true],
  [['- dir/'], 'a/dir/', true],
  [['- dir/'], 'dir', false],
  [['- dir/'], 'a/dir', false],
  [['- a/b/'], 'x/a/b/', true],
  [['- a/b/'], 'x/a/b', false],
  // '**' crosses '/'.
  [['- **/cache/*.o'], 'cache/z.o', true],
  [['- **/cache/*.o'], 'src/cache/w.o', true],
  [['- **/cache/*.o'], 'a/b/cache/w.o', true],
  [['- **/cache/*.o'], 'src/cache/sub/v.o', false],
  [['- **/cache/*.o'], 'src/mycache/w.o', false],
  [['- **.o'], 'a/b/c.o', true],
  [['- **.o'], 'c.o', true],
  [['- cache**'], 'x/cache/y', true],
  [['- cache**'], 'x/cachey', true],
  [['- cache**'], 'x/mycache/y', false],
  [['- a/**/z'], 'a/z', false], // '**' then '/' needs a component between
  [['- a/**/z'], 'a/b/c/z', true],
  [['- a/**/z'], 'q/a/b/z', true],
  [['- /**/deep'], 'deep/', false], // rsync's '/**/' needs a component
  [['- /**/deep'], 'a/deep/', true],
  [['- **/deep'], 'deep/', true],
  // A trailing '***' matches the directory itself too.
  [['- src/cache/***'], 'src/cache/', true],
  [['- src/cache/***'], 'src/cache/w.o', true],
  [['- src/cache/***'], 'src/cache/sub/v.o', true],
  [['- src/cache/***'], 'src/cache', false], // a file named cache is no directory
  [['- src/cache/***'], 'src/cachex/', false],
  [['- src/cache/**'], 'src/cache/', false],
  // First match wins; no match keeps.
  [['+ *.c', '- *'], 'x.c', false],
  [['+ *.c', '- *'], 'x.h', true],
  [['+ *.c', '- *'], 'sub/', true],
  [['- *', '+ *.c'], 'x.c', true],
  [['+ */', '+ *.c', '- *'], 'sub/', false],
  [['+ */', '+ *.c', '- *'], 'sub/x.c', false],
  [['+ */', '+ *.c', '- *'], 'sub/x.h', true],
  [['+ /src/', '- /*'], 'src/', false],
  [['+ /src/', '- /*'], 'other/', true],
  [['- *.o'], 'x.c', false],
  // Classes.
  [['- [!a]*'], 'bcd', true],
  [['- [!a]*'], 'abc', false],
  [['- [^a]*'], 'abc', false],
  [['- [^a]*'], 'xbc', true],
  [['- [a-c]x'], 'bx', true],
  [['- [a-c]x'], 'dx', false],
  [['- [a-]x'], '-x', true],
  [['- [-a]x'], '-x', true],
  [['- []]x'], ']x', true],
  [['- [!]]x'], ']x', false],
  [['- [!]]x'], 'qx', true],
  [['- [\\]]x'], ']x', true],
  [['- [a-c-e]'], '-', true],
  [['- [a-c-e]'], 'd', false],
  [['- [[:digit:]]*'], '9lives', true],
  [['- [[:digit:]]*'], 'lives9', false],
  [['- [[:upper:][:punct:]]'], 'Q', true],
  [['- [[:upper:][:punct:]]'], '.', true],
  [['- [[:upper:][:punct:]]'], 'q', false],
  [['- [[:alpha]'], ':', true], // no ':]': '[', ':', 'a', 'l', ... are plain members
  [['- [[:nope:]]'], 'n', false], // an unknown class never matches
  [['- a[bc'], 'a[bc', false], // an unterminated class never matches
  [['- x/[!a]/y'], 'x/b/y', true],
  [['- /x[!a]y'], 'x/y', false], // no class matches '/'
  [['- /x[/]y'], 'x/y', false],
  [['- /x[!a]y'], 'xby', true],
  // '?'.
  [['- ?'], 'a', true],
  [['- ?'], 'ab', false],
  [['- ?.c'], 'd/x.c', true],
  [['- /a?b'], 'a/b', false],
  [['- /a?b'], 'a.b', true],
  // Escapes and regex metacharacters are literal.
  [['- \\*.c'], '*.c', true],
  [['- \\*.c'], 'x.c', false],
  [['- a\\?'], 'a?', true],
  [['- a\\?'], 'ab', false],
  [['- x\\'], 'x\\', true], // no wildcard: a trailing '\' is literal
  [['- back\\slash'], 'back\\slash', true], // no wildcard: rsync compares it literally
  [['- back\\slash*'], 'backslash', true], // with one, '\s' is 's'
  [['- a.c'], 'abc', false],
  [['- (x)+$^{1}|'], '(x)+$^{1}|', true],
  [['- *(x)+$^{1}|.'], 'a(x)+$^{1}|.', true],
  [['- *(x)+$^{1}|.'], 'a(x)+$^{1}|!', false],
];

t.test('a table of rsync behaviours', async (t) => {
  for (const [lines, p, excluded] of TABLE) {
    const isDir = p.endsWith('/');
    const f = new Filter({ rules: rules(...lines) });
    const e = entry(isDir ? p.slice(0, -1) : p, isDir ? 'dir' : 'file');
    t.equal(f.excludes(e), excluded, `${JSON.stringify(lines)} ${excluded ? 'excludes' : 'keeps'} ${p}`);
  }
});

t.test('wildmatch: whole-string matching of one pattern', async (t) => {
  const cases: [string, string, boolean][] = [
    ['*', 'foo', true],
    ['*', '', true],
    ['f*o', 'foo', true],
    ['*f', 'foo', false],
    ['*ob*a*r*', 'foobar', true],
    ['*ab', 'aaaaaaabababab', true],
    ['foo*bar', 'foo/baz/bar', false],
    ['foo**bar', 'foo/baz/bar', true],
    ['foo***bar', 'foo/bar', true],
    ['foo?bar', 'foo/bar', false],
    ['foo[/]bar', 'foo/bar', false], // rsync 3.x: no class matches '/'
    ['foo[!a]bar', 'foo/bar', false],
    ['**/foo', 'foo', false],
    ['**/foo', '/foo', true],
    ['**/foo', 'a/b/foo', true],
    ['*/foo', 'a/b/foo', false],
    ['**/b*', 'a/b/c', false],
    ['**/b**', 'a/b/c', true],
    ['*/*/*', 'a/b/c', true],
    ['*/*/*', 'a/b/c/d', false],
    ['a\\*', 'a*', true],
    ['a\\*', 'ab', false],
    ['\\\\', '\\', true],
    ['\\a\\b', 'ab', true],
    ['\\', '\\', false], // a trailing '\' never matches
    ['a]', 'a]', true],
    ['[]]', ']', true],
    ['[]-]', '-', true],
    ['[]-]', 'a', false],
    ['[!]-]', 'a', true],
    ['[--0]', '/', false], // a range over '/' still leaves it out
    ['[--0]', '.', true],
    ['[a-e-n]', '-', true],
    ['[a-e-n]', 'j', false],
    ['[\\]]', ']', true],
    ['[\\\\-^]', ']', true],
    ['[\\\\-^]', '[', false],
    ['[A-\\\\]', 'G', true], // a range up to an escaped '\'
    ['[A-\\\\]', ']', false],
    ['[a-\\', 'a', false],
    ['[[:alpha:]][[:digit:]][[:upper:]]', 'a1B', true],
    ['[[:xdigit:]]', 'G', false],
    ['[[:lower:]][[:blank:]][[:graph:]][[:print:]]', 'a\t! ', true],
    ['[[:graph:]]', ' ', false],
    ['[[:space:]]', '\t', true],
    ['[[:cntrl:]]', '\x7f', true],
    ['[[:alnum:]]', '\xe9', false], // classes are ASCII
    ['[![:alnum:]]', '\xe9', true],
    ['[[:alpha:]', 'a', false], // an unterminated class
    ['[[:alpha:', 'a', false],
    ['[a-', '-', false],
    ['[!', 'x', false],
    ['ab[', 'ab[', false],
    ['a[]b', 'a[]b', false],
    ['x\\', 'x\\', false],
    ['-*-*-*-12-*-m-*', '-a-b-c-12-d-m-e', true],
    ['-*-*-*-12-*-m-*', '-a-b-c-12-d-X-e', false],
    ['**/*a*b*g*n*t', 'abcd/abcdefg/abcdefghijklmnop.txt', true],
    ['**/*a*b*g*n*t', 'abcd/abcdefg/abcdefghijklmnop.txtz', false],
  ];
  for (const [glob, text, want] of cases) {
    t.equal(
      wildmatch(glob, text),
      want,
      `${JSON.stringify(glob)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(text)}`,
    );
  }
  t.equal(compileGlob('[b-a]')?.length, 1, 'a reversed range is a class of its start only');
  t.equal(wildmatch('[b-a]', 'b'), true);
  t.equal(compileGlob('x*\\'), null, 'a pattern that can never match compiles to null');
  t.equal(new Filter({ rules: rules('- x*\\') }).excludes(entry('xy\\')), false);
});

t.test('patterns that make a backtracking matcher explode stay fast', async (t) => {
  const cases: [string, string][] = [
    ['*a*a*a*a*a*a*a*b', 'a'.repeat(255)],
    ['**a**a**a**a**a**b', ('a'.repeat(250) + '/').repeat(16)],
    ['a/**/**/**/**/**/b', 'a/'.repeat(2000) + 'c'],
    ['**/*a*a*a*a*b', ('a'.repeat(250) + '/').repeat(16)],
  ];
  for (const [pattern, p] of cases) {
    const f = new Filter({ rules: [{ action: 'exclude', pattern }] });
    const start = performance.now();
    t.equal(f.excludes(entry(p)), false);
    t.ok(
      performance.now() - start < 500,
      `${pattern} against ${p.length} bytes in ${(performance.now() - start).toFixed(1)} ms`,
    );
  }
});

t.test('the root is never excluded; other types and kinds', async (t) => {
  const f = new Filter({ rules: rules('- *'), maxSize: 0 });
  t.equal(f.excludes(entry('', 'dir')), false);
  t.equal(f.excludes(entry('x', 'symlink')), true);
  t.equal(new Filter({ rules: rules('- x/') }).excludes(entry('x', 'symlink')), false, 'a link to a dir is no dir');
  t.equal(new Filter({ rules: rules('- x/') }).excludes(entry('x', 'fifo')), false);
});

t.test('paths are bytes: non-UTF-8 names, UTF-8 patterns, raw pattern bytes', async (t) => {
  const eAcute = Buffer.from('é'); // C3 A9
  const f = new Filter({ rules: rules('- é*') });
  t.equal(f.excludes(entry(Buffer.concat([eAcute, Buffer.from('clair')]))), true, "'é*' matches UTF-8 C3 A9 ...");
  t.equal(f.excludes(entry(Buffer.from([0xe9, 0x61]))), false, 'but not latin1 E9');
  t.equal(f.excludes(entry(Buffer.concat([Buffer.from('d/'), eAcute, Buffer.from([0xff])]))), true);
  // '?' is one byte, as in rsync: a two-byte character needs '??'.
  t.equal(new Filter({ rules: rules('- ?') }).excludes(entry(eAcute)), false);
  t.equal(new Filter({ rules: rules('- ??') }).excludes(entry(eAcute)), true);
  const raw: FilterRule = { action: 'exclude', pattern: '\ufffd*', patternBytes: Buffer.from([0xff, 0x2a]) };
  const g = new Filter({ rules: [raw] });
  t.equal(g.excludes(entry(Buffer.from([0xff, 0xfe, 0x2e, 0x62]))), true, 'patternBytes match byte for byte');
  t.equal(g.excludes(entry(Buffer.from('\ufffdx'))), false, 'the display pattern is not used');
  const cls = new Filter({
    rules: [{ action: 'exclude', pattern: '', patternBytes: Buffer.from('[\x80-\xff]x', 'latin1') }],
  });
  t.equal(cls.excludes(entry(Buffer.from([0xfe, 0x78]))), true, 'a byte range');
  t.equal(cls.excludes(entry(Buffer.from([0x7f, 0x78]))), false);
});

t.test('newlines in names are ordinary bytes', async (t) => {
  t.equal(new Filter({ rules: rules('- *') }).excludes(entry('a\nb')), true);
  t.equal(new Filter({ rules: rules('- a?b') }).excludes(entry('a\nb')), true);
  t.equal(new Filter({ rules: rules('- a*b') }).excludes(entry('x/a\n\nb')), true);
  t.equal(new Filter({ rules: rules('- d/**') }).excludes(entry('d/\n/x\n')), true);
  t.equal(new Filter({ rules: rules('- *.tmp') }).excludes(entry('x.tmp\n')), false, "'$' is the end of the name");
  t.equal(new Filter({ rules: rules('- x.tmp') }).excludes(entry('\nx.tmp')), false);
  t.equal(new Filter({ rules: rules('- a/b') }).excludes(entry('q\n/a/b')), true);
});

t.test('size limits apply to regular files only', async (t) => {
  const f = new Filter({ minSize: 10, maxSize: 100 });
  t.equal(f.isEmpty, false);
  t.equal(f.excludes(entry('small', 'file', 9)), true, 'smaller than minSize');
  t.equal(f.excludes(entry('min', 'file', 10)), false, 'minSize itself is kept');
  t.equal(f.excludes(entry('max', 'file', 100)), false, 'maxSize itself is kept');
  t.equal(f.excludes(entry('big', 'file', 101)), true, 'larger than maxSize');
  t.equal(f.excludes(entry('dir', 'dir', 4096)), false);
  t.equal(f.excludes(entry('link', 'symlink', 200)), false);
  t.equal(f.excludes(entry('', 'file', 1000)), false, 'not even a root file');
  const zero = new Filter({ maxSize: 0 });
  t.equal(zero.excludes(entry('empty', 'file', 0)), false);
  t.equal(zero.excludes(entry('one', 'file', 1)), true);
  const both = new Filter({ rules: rules('+ *.big'), maxSize: 10 });
  t.equal(both.excludes(entry('x.big', 'file', 11)), true, 'an include rule does not override a size limit');
});

t.test('isEmpty and validation', async (t) => {
  t.equal(new Filter({}).isEmpty, true);
  t.equal(new Filter({ rules: [] }).isEmpty, true);
  t.equal(new Filter({ rules: rules('+ x') }).isEmpty, false);
  t.equal(new Filter({ minSize: 0 }).isEmpty, false);
  t.equal(new Filter({}).excludes(entry('anything')), false);
  t.throws(() => new Filter({ rules: [{ action: 'skip' as 'exclude', pattern: 'x' }] }), TypeError);
  t.throws(() => new Filter({ rules: [{ action: 'exclude', pattern: '' }] }), TypeError);
  t.throws(() => new Filter({ rules: [{ action: 'exclude', pattern: 3 as unknown as string }] }), TypeError);
  t.throws(() => new Filter({ rules: [null as unknown as FilterRule] }), TypeError);
  t.throws(() => new Filter({ rules: [{ action: 'exclude', pattern: 'x', patternBytes: 'x' as never }] }), TypeError);
  t.throws(() => new Filter({ rules: 'x' as never }), TypeError);
  t.throws(() => new Filter({ maxSize: -1 }), TypeError);
  t.throws(() => new Filter({ minSize: 1.5 }), TypeError);
  t.throws(() => new Filter({ maxSize: '10' as never }), TypeError);
});

t.test('parseSize', async (t) => {
  const cases: [string, number][] = [
    ['0', 0],
    ['10', 10],
    ['10b', 10],
    ['10k', 10240],
    ['10K', 10240],
    ['10KiB', 10240],
    ['10kib', 10240],
    ['10KB', 10000],
    ['1.5M', 1.5 * 1024 ** 2],
    ['1.5MB', 1.5e6],
    ['2G', 2 * 1024 ** 3],
    ['2GiB', 2 * 1024 ** 3],
    ['2GB', 2e9],
    ['1T', 1024 ** 4],
    ['1TiB', 1024 ** 4],
    ['1TB', 1e12],
    ['1P', 1024 ** 5],
    ['.5k', 512],
    ['1.', 1],
    ['0.1k', 102],
    ['1k-1', 1023],
    ['1KB+1', 1001],
    ['5+1', 6],
  ];
  for (const [s, n] of cases) t.equal(parseSize(s), n, s);
  for (const bad of [
    '',
    'k',
    '1x',
    '10 k',
    ' 10',
    '10kk',
    '-1',
    '1e3',
    '0-1',
    '1k+2',
    '1KiBB',
    '.',
    '1.2.3',
    '9999999P',
  ]) {
    t.throws(() => parseSize(bad), { name: 'TypeError', message: JSON.stringify(bad) }, `refuses ${bad}`);
  }
  t.throws(() => parseSize(10 as never), TypeError);
});

t.test('parseRuleLines', async (t) => {
  const text = [
    '# a comment',
    '; another',
    '',
    '   ',
    '*.tmp',
    '+ keep.tmp',
    '- /build/',
    ' leading space',
    'trailing space ',
    '+keep', // no space: a pattern starting with '+'
    '-x',
    ' # not a comment',
    '!x',
  ].join('\n');
  t.same(parseRuleLines(text), [
    { action: 'exclude', pattern: '*.tmp' },
    { action: 'include', pattern: 'keep.tmp' },
    { action: 'exclude', pattern: '/build/' },
    { action: 'exclude', pattern: ' leading space' },
    { action: 'exclude', pattern: 'trailing space ' },
    { action: 'exclude', pattern: '+keep' },
    { action: 'exclude', pattern: '-x' },
    { action: 'exclude', pattern: ' # not a comment' },
    { action: 'exclude', pattern: '!x' },
  ]);
  t.same(parseRuleLines('a\r\nb\rc\n', 'include'), [
    { action: 'include', pattern: 'a' },
    { action: 'include', pattern: 'b' },
    { action: 'include', pattern: 'c' },
  ]);
  t.same(parseRuleLines('- x\n+ y', 'include'), [
    { action: 'exclude', pattern: 'x' },
    { action: 'include', pattern: 'y' },
  ]);
  t.same(parseRuleLines(''), []);
  t.same(parseRuleLines('é*'), [{ action: 'exclude', pattern: 'é*' }]);
  const bytes = Buffer.concat([Buffer.from('é\n- '), Buffer.from([0xff, 0x2a]), Buffer.from('\n')]);
  const parsed = parseRuleLines(bytes);
  t.same(parsed[0], { action: 'exclude', pattern: 'é' }, 'valid UTF-8 needs no patternBytes');
  t.equal(parsed[1]?.pattern, '\ufffd*');
  t.same(parsed[1]?.patternBytes, Buffer.from([0xff, 0x2a]));
  t.throws(() => parseRuleLines('x\n!\n'), { name: 'TypeError', message: /line 2/ });
  t.throws(() => parseRuleLines('- '), { name: 'TypeError', message: /line 1/ });
  t.throws(() => parseRuleLines('x', 'keep' as never), TypeError);
});

t.test('readRuleFile', async (t) => {
  const dir = diskDir(t);
  const file = path.join(dir, 'rules');
  writeFileSync(file, Buffer.concat([Buffer.from('# rules\n*.o\n+ *.c\n'), Buffer.from([0xfe, 0x2a, 0x0a])]));
  const read = readRuleFile(file, 'exclude');
  t.same(read.slice(0, 2), [
    { action: 'exclude', pattern: '*.o' },
    { action: 'include', pattern: '*.c' },
  ]);
  const f = new Filter({ rules: read });
  t.equal(f.excludes(entry('a/x.o')), true);
  t.equal(f.excludes(entry(Buffer.from([0xfe, 0x41]))), true);
  t.equal(readRuleFile(file, 'include')[0]?.action, 'include');
  writeFileSync(file, 'x\n!\n');
  t.throws(() => readRuleFile(file, 'exclude'), {
    name: 'TypeError',
    message: `${file}: line 2: ` + "'!'" + ' (clear',
  });
  t.throws(() => readRuleFile(path.join(dir, 'missing'), 'exclude'), { code: 'ENOENT' });
});

// ---------------------------------------------------------------------------------------------
// Differential: the same tree, the same rule file, rsync's choice against ours.

function hasRsync(): boolean {
  try {
    execFileSync('rsync', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const L = (s: string): Buffer => Buffer.from(s, 'latin1');
const U = (s: string): Buffer => Buffer.from(s, 'utf8');
/** [path, size] for files, [path/] for directories, [path, '->target'] for symlinks. */
const TREE: [Buffer, (number | string)?][] = [
  [U('a/')],
  [U('a/b/')],
  [U('a/b/deep/')],
  [U('a/dir/')],
  [U('x/')],
  [U('x/a/')],
  [U('xa/')],
  [U('top/')],
  [U('sub/')],
  [U('sub/x/')],
  [U('dir/')],
  [U('cache/')],
  [U('src/')],
  [U('src/cache/')],
  [U('src/cache/sub/')],
  [U('src/mycache/')],
  [U('é/')],
  [L('\xff\xfe/')],
  [U('top.c'), 10],
  [U('top.o'), 2000],
  [U('x.c'), 0],
  [U('y.tmp'), 100],
  [U('1.log'), 50],
  [U('log9'), 50],
  [U('b.c'), 3],
  [U('r.c'), 3],
  [U('[br].c'), 3],
  [U('star*name'), 1],
  [U('back\\slash'), 1],
  [U('sp ace.tmp'), 1],
  [U('new\nline.tmp'), 7],
  [U('a/b/x.tmp'), 1],
  [U('a/b/keep.txt'), 5000],
  [U('a/b/deep/y.o'), 30],
  [U('a/b/deep/z.c'), 30],
  [U('a/dir/f.o'), 1],
  [U('x/a/b'), 1],
  [U('xa/b'), 1],
  [U('top/f'), 1],
  [U('sub/top'), 1],
  [U('sub/dir'), 1],
  [U('sub/x/deep'), 1],
  [U('dir/in.c'), 1],
  [U('cache/z.o'), 1],
  [U('cache/z.c'), 1],
  [U('src/cache/w.o'), 1500],
  [U('src/cache/w.c'), 1],
  [U('src/cache/sub/v.o'), 1],
  [U('src/mycache/m.o'), 1],
  [U('é.txt'), 1],
  [U('éclair.o'), 1],
  [U('é/é'), 1],
  [L('\xff\xfe.bin'), 300],
  [L('\xff\xfe/inner.c'), 1],
  [U('link.c'), '->top.c'],
  [U('linkdir'), '->a'],
];

function buildTree(root: string): void {
  const rootBytes = Buffer.from(root);
  for (const [rel, what] of TREE) {
    const isDir = rel[rel.length - 1] === 0x2f;
    const abs = Buffer.concat([rootBytes, Buffer.from('/'), isDir ? rel.subarray(0, -1) : rel]);
    if (isDir) mkdirSync(abs);
    else if (typeof what === 'string') symlinkSync(what.slice(2), abs);
    else writeFileSync(abs, Buffer.alloc(what ?? 0, 0x61));
  }
}

/** What our Filter keeps under root, walking it as the scan would (no descent into an excluded dir). */
function ourKeep(root: string, filter: Filter): string[] {
  const kept: string[] = [];
  const walk = (rel: Buffer): void => {
    const abs = rel.length ? Buffer.concat([Buffer.from(root + '/'), rel]) : Buffer.from(root);
    for (const d of readdirSync(abs, { withFileTypes: true, encoding: 'buffer' })) {
      const name = d.name as unknown as Buffer;
      const p = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const type: EntryType = d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'fifo';
      const size = type === 'file' ? lstatSync(Buffer.concat([abs, Buffer.from('/'), name])).size : 0;
      if (filter.excludes({ path: p, type, size })) continue;
      kept.push(p.toString('latin1') + (type === 'dir' ? '/' : ''));
      if (type === 'dir') walk(p);
    }
  };
  walk(Buffer.alloc(0));
  return kept.sort();
}

/** What `rsync -a --dry-run` would transfer: its '%n' lines, '\#ooo' escapes decoded, the root left out. */
function rsyncKeep(src: string, dst: string, args: string[]): string[] {
  const out = execFileSync('rsync', ['-a', '--dry-run', '--out-format=%n', ...args, src + '/', dst + '/'], {
    encoding: 'latin1',
  });
  return out
    .split('\n')
    .filter((l) => l !== '' && l !== './')
    .map((l) => l.replace(/\\#([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .sort();
}

/** Rule files (as rsync reads --exclude-from), plus optional size limits. */
const RULE_SETS: { lines: Buffer[]; min?: string; max?: string }[] = [
  { lines: [U('*.tmp')] },
  { lines: [U('/top')] },
  { lines: [U('a/b')] },
  { lines: [U('b')] },
  { lines: [U('dir/')] },
  { lines: [U('a/b/'), U('*/deep/*.c')] },
  { lines: [U('**/cache/*.o')] },
  { lines: [U('+ *.c'), U('- *')] },
  { lines: [U('+ */'), U('+ *.c'), U('- *')] },
  { lines: [U('[!a-m]*')] },
  { lines: [U('?.c'), U('?')] },
  { lines: [U('é*')] },
  { lines: [U('src/cache/***')] },
  { lines: [U('/**/deep'), U('**/top')] },
  { lines: [U('**.o')] },
  { lines: [U('cache**')] },
  { lines: [U('a/*/deep/'), U('*[[:digit:]]*')] },
  { lines: [U('+ /src/'), U('+ /src/cache/'), U('+ /src/cache/*.c'), U('- *')] },
  { lines: [L('\xff*')] },
  { lines: [U('new?line*'), U('sp ace*')] },
  { lines: [U('\\[br\\].c'), U('back\\slash'), U('star\\*name')] },
  { lines: [U('[[]br]*'), U('*[!.]o')] },
  { lines: [U('- *.tmp')], max: '1k' },
  { lines: [U('+ *.o')], min: '100', max: '1.5KB' },
];

t.test(
  'differential: rsync transfers exactly what the filter keeps',
  { skip: !hasRsync() && 'no rsync' },
  async (t) => {
    const dir = diskDir(t);
    const src = path.join(dir, 'src');
    mkdirSync(src);
    buildTree(src);
    const all = ourKeep(src, new Filter({}));
    t.same(rsyncKeep(src, path.join(dir, 'dst'), []), all, 'no rules: everything, names decoded alike');
    RULE_SETS.forEach(({ lines, min, max }, i) => {
      const file = path.join(dir, `rules-${i}`);
      writeFileSync(file, Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
      const args = [`--exclude-from=${file}`];
      if (min) args.push(`--min-size=${min}`);
      if (max) args.push(`--max-size=${max}`);
      const filter = new Filter({
        rules: readRuleFile(file, 'exclude'),
        minSize: min === undefined ? undefined : parseSize(min),
        maxSize: max === undefined ? undefined : parseSize(max),
      });
      const ours = ourKeep(src, filter);
      const label =
        lines.map((l) => JSON.stringify(l.toString())).join(' ') +
        (min ? ` min ${min}` : '') +
        (max ? ` max ${max}` : '');
      t.same(ours, rsyncKeep(src, path.join(dir, 'dst'), args), label);
      t.ok(ours.length < all.length, `${label} excludes something`);
    });
  },
);

t.test('differential: random patterns over tricky names', { skip: !hasRsync() && 'no rsync' }, async (t) => {
  const dir = diskDir(t);
  const src = path.join(dir, 'src');
  const names = ['a', 'b', 'ab', 'a-b', 'a]', '[a', '!a', 'a\\b', '*', 'a?', 'a.b', 'ba'];
  const dirs = new Set(['a', 'ab', '[a', 'a.b', 'b']);
  const fill = (d: string, depth: number): void => {
    mkdirSync(d);
    for (const n of names) {
      if (dirs.has(n) && depth < 2) fill(path.join(d, n), depth + 1);
      else if (depth < 2 || n.length < 3) writeFileSync(path.join(d, n), '');
    }
  };
  fill(src, 0);
  const pieces = ['a', 'b', '*', '**', '***', '?', '/', '/', '[ab]', '[!a]', '[a-b]', '[]a]', '\\*', '\\a', '-', ']'];
  const rnd = prng(20240611);
  const pick = (): string => pieces[Math.floor(rnd() * pieces.length)]!;
  const pattern = (): string => {
    let p = rnd() < 0.2 ? '/' : '';
    for (let n = 1 + Math.floor(rnd() * 5); n > 0; n--) p += pick();
    return rnd() < 0.2 ? p + '/' : p;
  };
  const all = ourKeep(src, new Filter({})).length;
  let decisive = 0;
  for (let i = 0; i < 40; i++) {
    const lines = rnd() < 0.4 ? [`+ ${pattern()}`, `- ${pattern()}`] : [`- ${pattern()}`];
    const file = path.join(dir, `random-${i}`);
    writeFileSync(file, lines.join('\n') + '\n');
    const ours = ourKeep(src, new Filter({ rules: readRuleFile(file, 'exclude') }));
    t.same(ours, rsyncKeep(src, path.join(dir, 'dst'), [`--exclude-from=${file}`]), JSON.stringify(lines));
    if (ours.length > 0 && ours.length < all) decisive++;
  }
  t.ok(decisive >= 8, `${decisive} of 40 rule sets keep some but not all`);
});
