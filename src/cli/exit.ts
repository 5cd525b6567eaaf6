/** The documented exit codes of every command. */
export const Exit = {
  /** Everything asked for was done (and verified, when asked). */
  ok: 0,
  /** Some files failed; each was named on stderr. Finished files are in place. */
  failures: 1,
  /** Bad usage: unknown command or option, missing argument. */
  usage: 2,
  /** Stopped by SIGINT/SIGTERM; rerun the same command to resume. */
  interrupted: 130,
} as const;
