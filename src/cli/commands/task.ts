import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('task')
    .description("Run one task of a sweep's graph (what each Slurm job array element runs); reads EXPDIR/slurm/tasks.json")
    .argument('<expdir>', "the experiment's folder (reports/EXP)")
    .requiredOption('--id <id>', 'task id (merge:KEY, eval:KEY or pd:KEY)')
    .action(async (expDir: string, o: { id: string }) => {
      const { runTaskCommand } = await import('../../sweep/taskCommand.js');
      process.exitCode = await runTaskCommand(expDir, o.id, (l) => process.stdout.write(l + '\n'));
    });
}
