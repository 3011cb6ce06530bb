import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('status')
    .description('Where each point of a sweep stands: done, running (with Slurm job ids), failed (with the reason), queued')
    .argument('<experiment>', 'experiment file (experiments/NAME.yaml)')
    .option('--reports <dir>', 'folder holding reports/EXP', 'reports')
    .option('--zoo <dir>', 'folder that zoo:NAME models are read from (default: data/zoo)')
    .option('--json', 'print the status as JSON')
    .action(async (file: string, o: { reports: string; zoo?: string; json?: boolean }) => {
      const { formatStatus, sweepStatus } = await import('../../sweep/status.js');
      const s = await sweepStatus(file, { reportsDir: o.reports, zooDir: o.zoo });
      if (o.json) process.stdout.write(JSON.stringify(s, null, 1) + '\n');
      else for (const l of formatStatus(s)) process.stdout.write(l + '\n');
    });
}
