/**
 * Delegated evaluation by an external command: we write the requests as JSONL to a task file,
 * run `cmd {model} {task_file}` (no shell; placeholders substituted per argument) and read one
 * JSON object per line from its stdout: `{"id", "output", "finish_reason"?}` for generation,
 * `{"id", "nll", "tokens"}` for scoring.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, parseCommandString } from 'execa';
import { z } from 'zod';
import { UserError } from '../../util/errors.js';
import type { EvalBackend, GenerateRequest, Generation, Score, ScoreRequest } from './types.js';

const genLine = z.object({ id: z.union([z.string(), z.number()]).transform(String), output: z.string(), finish_reason: z.string().optional() });
const scoreLine = z.object({ id: z.union([z.string(), z.number()]).transform(String), nll: z.number().finite(), tokens: z.number().int().positive() });

export class DelegateBackend implements EvalBackend {
  readonly name: string;
  constructor(private readonly command: string, private readonly modelDir: string, private readonly timeoutMs = 30 * 60_000) {
    this.name = `delegate:${command}`;
    const argv = parseCommandString(command);
    if (argv.length === 0) throw new UserError('--delegate-cmd: empty command', { field: 'delegate-cmd' });
    if (!argv.some((a) => a.includes('{task_file}'))) throw new UserError(`--delegate-cmd "${command}": must contain {task_file}`, { field: 'delegate-cmd' });
  }

  private async run<T>(kind: string, rows: unknown[], ids: string[], parse: z.ZodType<T & { id: string }>): Promise<Map<string, T>> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mergelab-eval-'));
    const taskFile = path.join(dir, `${kind}.jsonl`);
    try {
      await fs.writeFile(taskFile, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const [file, ...args] = parseCommandString(this.command).map((a) => a.replaceAll('{model}', this.modelDir).replaceAll('{task_file}', taskFile));
      const res = await execa(file, args, { reject: false, timeout: this.timeoutMs, maxBuffer: 1 << 30 });
      if (res.exitCode !== 0 || res.failed) {
        throw new UserError(`--delegate-cmd "${this.command}" failed (exit ${res.exitCode ?? res.signal}): ${String(res.stderr).slice(-500) || res.shortMessage}`, { field: 'delegate-cmd' });
      }
      const out = new Map<string, T>();
      String(res.stdout).split('\n').forEach((line, i) => {
        if (!line.trim()) return;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch {
          throw new UserError(`--delegate-cmd output line ${i + 1}: not JSON: ${line.slice(0, 120)}`, { field: 'delegate-cmd' });
        }
        const p = parse.safeParse(obj);
        if (!p.success) throw new UserError(`--delegate-cmd output line ${i + 1}: ${p.error.issues.map((x) => `field "${x.path.join('.')}": ${x.message}`).join('; ')}`, { field: 'delegate-cmd' });
        out.set(p.data.id, p.data);
      });
      const missing = ids.filter((id) => !out.has(id));
      if (missing.length) throw new UserError(`--delegate-cmd output has no line for ${missing.length} of ${ids.length} ${kind} requests (first: id ${missing[0]})`, { field: 'delegate-cmd' });
      return out;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async generate(reqs: readonly GenerateRequest[]): Promise<Generation[]> {
    const rows = reqs.map((r) => ({ type: 'generate', id: r.id, prompt: r.prompt, max_new_tokens: r.maxNewTokens, stop: r.stop }));
    const got = await this.run('generate', rows, reqs.map((r) => r.id), genLine);
    return reqs.map((r) => {
      const g = got.get(r.id)!;
      return { text: g.output, hitLimit: g.finish_reason === undefined ? undefined : g.finish_reason === 'length' };
    });
  }

  async score(reqs: readonly ScoreRequest[]): Promise<Score[]> {
    const rows = reqs.map((r) => ({ type: 'loglikelihood_rolling', id: r.id, text: r.text }));
    const got = await this.run('score', rows, reqs.map((r) => r.id), scoreLine);
    return reqs.map((r) => ({ nll: got.get(r.id)!.nll, tokens: got.get(r.id)!.tokens }));
  }

  dispose(): void {}
}
