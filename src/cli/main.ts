#!/usr/bin/env node
import { CommanderError } from 'commander';
import { formatProblems, isUserError } from '../util/errors.js';
import { exitCodeFor } from './exit.js';
import { restoreTerminal } from './interrupt.js';
import { buildProgram } from './program.js';

async function main(): Promise<void> {
  await buildProgram().parseAsync(process.argv);
}

main().catch((e: unknown) => {
  restoreTerminal();
  process.exitCode = exitCodeFor(e);
  // Commander has printed its usage error, help or version itself.
  if (e instanceof CommanderError) return;
  if (isUserError(e)) process.stderr.write(`mergelab: ${formatProblems(e.problems, e.problems.length > 1 ? e.file : undefined)}\n`);
  else process.stderr.write(`mergelab: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
});
