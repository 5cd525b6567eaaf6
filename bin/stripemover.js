#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// A reader that stops early (`| head`) is not an error: stop quietly, as coreutils do.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main().catch((err) => {
  process.stderr.write(`stripemover: ${err?.message ?? err}\n`);
  process.exitCode = 1;
});
