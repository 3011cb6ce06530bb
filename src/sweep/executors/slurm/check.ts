import { UserError } from '../../../util/errors.js';
import type { ExecutorConfig } from '../../executorConfig.js';
import type { WorkKind } from '../../graph.js';
import { SlurmCommandError, type SlurmClient } from './commands.js';
import { mergelabRoot } from './script.js';
import { filesystemOf, localNames, sharedFsProblems, type NodeAddress } from './sharedfs.js';

/**
 * Before anything is submitted: the controller answers, every partition named exists, and the
 * folders the jobs read and write are visible from the partitions' nodes.
 */

export interface CheckInput {
  config: ExecutorConfig;
  client: SlurmClient;
  expDir: string;
  models: Array<{ name: string; dir: string }>;
  /** `file:line:col` of a field of the experiment file. */
  where(field: Array<string | number>): string;
  file: string;
}

export async function checkCluster(c: CheckInput): Promise<void> {
  let partitions: Array<Record<string, string>>;
  try {
    partitions = await c.client.show('partition');
  } catch (e) {
    if (e instanceof SlurmCommandError) throw new UserError(`--executor slurm: cannot reach the Slurm controller (${e.message.trim()})`, { field: 'executor' });
    throw e;
  }
  const known = new Map(partitions.map((p) => [p.PartitionName, p]));
  const fallback = partitions.find((p) => p.Default === 'YES');
  const problems: string[] = [];
  const used = new Set<string>();
  for (const kind of ['merge', 'eval', 'pointdiag'] as WorkKind[]) {
    const given = c.config.jobs[kind].partition;
    if (!given) {
      if (fallback) used.add(fallback.PartitionName);
      else problems.push(`${c.where(['executor'])}: field executor.partition: this cluster has no default partition; name one (partitions: ${[...known.keys()].join(', ') || 'none'})`);
      continue;
    }
    for (const name of given.split(',')) {
      if (known.has(name)) used.add(name);
      else problems.push(`${c.where(['executor', kind, 'partition'])}: field executor.partition (for ${kind} tasks): no partition '${name}' on this cluster (partitions: ${[...known.keys()].join(', ') || 'none'})`);
    }
  }
  if (problems.length) throw new UserError([...new Set(problems)].join('\n'), { file: c.file });
  if (c.config.sharedFs) return;

  const nodes: NodeAddress[] = [];
  for (const name of used) {
    const expr = known.get(name)!.Nodes;
    if (!expr || expr === '(null)') continue;
    const info = new Map((await c.client.show('node', expr)).map((n) => [n.NodeName, n]));
    // A node Slurm does not describe (State=FUTURE, say) may still run jobs later: judged by its name.
    for (const name of await c.client.hostnames(expr)) nodes.push({ name, host: info.get(name)?.NodeHostName ?? name, addr: info.get(name)?.NodeAddr ?? name });
  }
  const folders = [
    { what: 'the experiment folder (cache and results)', dir: c.expDir },
    ...c.models.map((m) => ({ what: `model ${m.name}`, dir: m.dir })),
    { what: 'mergelab itself', dir: mergelabRoot() },
  ];
  const typed = await Promise.all(folders.map(async (f) => ({ ...f, fsType: (await filesystemOf(f.dir))?.type ?? null })));
  const fs = sharedFsProblems(typed, nodes, localNames());
  if (fs.length) {
    throw new UserError(
      `--executor slurm: the jobs would not see this machine's files:\n${fs.map((p) => `  - ${p}`).join('\n')}\nput them on shared storage (--reports DIR for the experiment folder), or set executor.shared_fs: true in ${c.file} if they are shared in a way mergelab cannot tell`,
      { field: 'executor' },
    );
  }
}
