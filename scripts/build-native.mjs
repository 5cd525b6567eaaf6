#!/usr/bin/env node
// Builds the addon with node-gyp from binding.gyp, offline: node-gyp is told where this
// Node's own headers are (distribution packages install them beside the binary), so it
// never tries to download a header tarball.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return undefined; // node-gyp falls back to its cache or a download
}

function nodeGyp() {
  // npm hands its bundled node-gyp to lifecycle scripts; outside npm, find npm's copy.
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const npmDir = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
    return path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  }
}

const args = [nodeGyp(), 'rebuild', `--jobs=${process.env.JOBS ?? 'max'}`];
const dir = nodeDir();
if (dir) args.push(`--nodedir=${dir}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\nstripemover: building the native addon failed. It needs a C++17 compiler, make, python3 and\n' +
      "Debian's libxxhash-dev (apt-get install -y g++ make python3 libxxhash-dev), then: npm run build:native",
  );
  process.exit(r.status ?? 1);
}
