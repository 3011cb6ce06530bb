#!/usr/bin/env node
import { CommanderError } from 'commander';
import { isUserError, formatProblems } from '../util/errors.js';
import { EXIT } from './exit.js';
import { restoreTerminal } from './interrupt.js';
import { buildProgram } from './program.js';

async function main(): Promise<void> {
  await buildProgram().parseAsync(process.argv);
}

main().catch((e: unknown) => {
  restoreTerminal();
  if (e instanceof CommanderError) {
    // Commander has printed the usage error (or the help, or the version, which exit 0).
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.input;
    return;
  }
  if (isUserError(e)) {
    process.stderr.write(`mergelab: ${formatProblems(e.problems, e.problems.length > 1 ? e.file : undefined)}\n`);
    process.exitCode = EXIT.input;
    return;
  }
  process.stderr.write(`mergelab: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = EXIT.internal;
});
