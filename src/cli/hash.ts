// `stripemover hash PATH...`: XXH64 of files, printed exactly as `xxhsum -H1` prints them.
import type { Command } from 'commander';
import { native } from '../native.js';
import { argBytes } from './raw-argv.js';
import { writeOut } from './output.js';
import { Exit } from './exit.js';

export function hashCommand(program: Command): void {
  program
    .command('hash')
    .description('print the XXH64 of each file, in the format of `xxhsum -H1`')
    .argument('<paths...>', 'files to hash')
    .option('--direct', 'read with O_DIRECT (no page-cache pollution); falls back where refused')
    .option('--sparse', 'skip reading holes (they hash as zeros)')
    .action(async (paths: string[], opts: { direct?: boolean; sparse?: boolean }) => {
      let failed = 0;
      for (const p of paths) {
        const file = argBytes(p);
        try {
          const { digest } = await native.hashFileAsync(file, { direct: opts.direct, sparse: opts.sparse });
          writeOut(`${digest}  `, file, '\n');
        } catch (err) {
          failed++;
          process.stderr.write(`stripemover: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = Exit.failures;
    });
}
