// The loader's errors tell the user exactly what to run.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const loader = path.join(root, 'dist', 'native.js');

function load(addon: string) {
  return spawnSync(process.execPath, ['-e', `import(${JSON.stringify(loader)})`], {
    env: { ...process.env, STRIPEMOVER_ADDON: addon },
    encoding: 'utf8',
  });
}

t.test('the built addon loads from dist/', async (t) => {
  const out = execFileSync(
    process.execPath,
    ['-e', `import(${JSON.stringify(loader)}).then(m => console.log(typeof m.native.copyRange))`],
    {
      encoding: 'utf8',
    },
  );
  t.equal(out.trim(), 'function');
});

t.test('a missing addon names the file and the command to build it', async (t) => {
  const r = load('/nonexistent/stripemover.node');
  t.not(r.status, 0);
  t.match(r.stderr, /the native addon is not built: \/nonexistent\/stripemover\.node is missing/);
  t.match(r.stderr, /npm run build:native/);
  t.match(r.stderr, /libxxhash-dev/);
});

t.test('a file that is not an addon for this Node says so and how to rebuild', async (t) => {
  const r = load('/etc/passwd');
  t.not(r.status, 0);
  t.match(r.stderr, /the native addon \/etc\/passwd cannot be loaded/);
  t.match(r.stderr, /Rebuild it for this Node/);
});

t.test('an addon built for a newer Node-API than this Node is named as an ABI mismatch', async (t) => {
  // A shared object needing a napi_* symbol this Node lacks fails to load just as one built for a newer Node does.
  const dir = mkdtempSync('/var/tmp/stripemover-abi-');
  t.teardown(() => execFileSync('rm', ['-rf', dir]));
  const src = path.join(dir, 'newer.c');
  writeFileSync(src, 'extern int napi_from_the_future(void);\nint f(void) { return napi_from_the_future(); }\n');
  execFileSync('cc', ['-shared', '-fPIC', '-Wl,-z,now', '-o', path.join(dir, 'newer.node'), src]);
  const r = load(path.join(dir, 'newer.node'));
  t.not(r.status, 0);
  t.match(r.stderr, /was built for another Node\.js \(this is v\d+/);
  t.match(r.stderr, /npm run build:native/);
});

t.test('a worker terminated inside a native call does not take the process down', async (t) => {
  // What an abort or a second Ctrl-C does to the copy workers: the call's JS error cannot be
  // thrown into a terminating thread, and without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
  // node-addon-api turned that into std::terminate for the whole process.
  const dir = mkdtempSync('/var/tmp/stripemover-test-');
  const file = path.join(dir, 'data');
  writeFileSync(file, Buffer.alloc(32 << 20, 7));
  const script = `
    const { Worker } = require('node:worker_threads');
    const code = \`
      const native = require(${JSON.stringify(path.join(root, 'build', 'Release', 'stripemover.node'))});
      const f = new native.File(${JSON.stringify(file)}, 0);
      for (;;) native.copyRange(f, null, { hash: new native.Xxh64() });
    \`;
    (async () => {
      for (let i = 0; i < 12; i++) {
        const w = new Worker(code, { eval: true });
        await new Promise((r) => setTimeout(r, 20 + (i % 4) * 15));
        await w.terminate();
      }
      console.log('survived');
    })();
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  t.equal(r.signal, null, `no crash: ${r.stderr}`);
  t.equal(r.stdout.trim(), 'survived');
  execFileSync('rm', ['-rf', dir]);
});
