// The `stripemover` command: parses arguments and calls the library. Thin by design.
import { Command, CommanderError } from 'commander';
import { hashCommand } from './hash.js';
import { transferCommands } from './transfer.js';
import { lustreCommands } from './lustre.js';
import { repoCommands } from './repo.js';
import { Exit } from './exit.js';

export async function main(argv = process.argv): Promise<void> {
  const program = new Command('stripemover')
    .description(
      'stripe-aware, verified, resumable data mover and backup tool for Lustre and other parallel file systems',
    )
    .version('0.1.0')
    .exitOverride();
  hashCommand(program);
  transferCommands(program);
  lustreCommands(program);
  repoCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? Exit.ok : Exit.usage;
      return;
    }
    throw err;
  }
}
