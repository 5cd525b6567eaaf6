#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

main().catch((err) => {
  process.stderr.write(`stripemover: ${err?.message ?? err}\n`);
  process.exitCode = 1;
});
