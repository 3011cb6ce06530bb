import readline from 'node:readline';
import type { InterruptChoice } from './executors/slurm/executor.js';

/**
 * Ctrl-C during a Slurm run: ask on the terminal whether to cancel the jobs or leave them
 * running. A second Ctrl-C, or no answer but Enter, leaves them (the cautious choice: queued
 * work is not thrown away by a slip of the finger).
 */
export function askOnTerminal(input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stderr) {
  return (liveTasks: number, jobs: string[]): Promise<InterruptChoice> =>
    new Promise((resolve) => {
      const rl = readline.createInterface({ input, output, terminal: true });
      const done = (c: InterruptChoice): void => {
        rl.close();
        resolve(c);
      };
      rl.on('SIGINT', () => done('leave'));
      rl.question(`\n${liveTasks} task(s) are queued or running in Slurm jobs ${jobs.join(', ')}. Cancel them (scancel)? [y/N] `, (a) => done(/^y(es)?$/i.test(a.trim()) ? 'cancel' : 'leave'));
    });
}
