import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluateBackend } from '../../src/eval/evaluate.js';
import { loadTask } from '../../src/eval/task.js';
import type { EvalBackend, GenerateRequest, Generation } from '../../src/eval/backends/types.js';
import { generateReport } from '../../src/report/generate.js';
import type { ResultRecord } from '../../src/results/record.js';
import { rec } from './helpers.js';

const temps: string[] = [];
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/*
 * A suite the code has never heard of, declared in YAML only: how often a model answers by
 * repeating the question. Lower is better, and it is a quality of the model, not a skill.
 */
const SUITE = `task: echo
type: generate_until
dataset: echo.jsonl
id_field: id
prompt: "Q: {{question}}\\nA:"
target: "{{question}}"
generation: {max_new_tokens: 16, stop: ["\\n"]}
filters:
  - name: parrot
    steps: [{function: strip}]
metrics:
  - metric: exact_match
    higher_is_better: false
    role: quality
    unit: share of answers that repeat the question
`;

/** A model that repeats the first `parrot` questions of the set and answers the rest. */
function model(name: string, parrot: number): EvalBackend {
  return {
    name: `script:${name}`,
    async generate(reqs: readonly GenerateRequest[]): Promise<Generation[]> {
      return reqs.map((r, i) => ({ text: i < parrot ? ` ${r.prompt.slice(3, r.prompt.indexOf('\n'))}\n` : ' 42\n', hitLimit: false }));
    },
    async score() {
      throw new Error('not a scoring suite');
    },
    dispose() {},
  };
}

describe('a metric declared in an eval YAML', () => {
  it('is drawn and judged the right way round with no code change (higher_is_better: false)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mergelab-declared-'));
    temps.push(dir);
    await writeFile(path.join(dir, 'echo.yaml'), SUITE);
    await writeFile(path.join(dir, 'echo.jsonl'), Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `e${i}`, question: `what is ${i} plus ${i}?` })).join('\n') + '\n');
    const task = await loadTask('echo', dir);
    // The evaluator scores the suite and returns what the YAML declared, with per-item outcomes.
    const evaluate = async (point: string, parrot: number, extra: Partial<ResultRecord>): Promise<ResultRecord> => {
      const r = await evaluateBackend(model(point, parrot), point, { suites: ['echo'] }, [task]);
      return rec({ point, metrics: r.metrics, metricSpecs: r.metricSpecs, items: r.items, ...extra });
    };
    const records = [
      await evaluate('base', 4, { role: 'base', variant: 'base' }),
      await evaluate('parent', 2, { role: 'parent', variant: 'tuned' }),
      ...(await Promise.all([0.25, 0.5, 1].map((w) => evaluate(`w${w}`, Math.round(32 * w), { variant: 'v', axes: { weight: w } })))),
    ];
    expect(records[0].metricSpecs!.echo.exact_match_parrot).toEqual({ role: 'quality', higherIsBetter: false, aggregation: 'proportion', unit: 'share of answers that repeat the question' });
    expect(records[2].metrics.echo.exact_match_parrot).toBe(8 / 40);

    const exp = path.join(dir, 'exp');
    await (await import('node:fs/promises')).mkdir(exp);
    await writeFile(path.join(exp, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const s = await generateReport(exp, { svg: false });

    // Judged: parroting 80% and 40% break the quality-rate limit (20%), beyond the noise; 20% does not.
    const flagged = new Map(s.flags.map((f) => [f.point, f]));
    expect([...flagged.keys()].sort()).toEqual(['w0.5', 'w1']);
    expect(flagged.get('w1')!.violations).toEqual([expect.objectContaining({ rule: 'quality_rate', metric: 'echo.exact_match_parrot', value: 0.8, beyondNoise: true })]);
    // Recommended: with no skill to keep, the goal is the declared metric, lowest best.
    expect(s.recommendations).toEqual([expect.objectContaining({ goal: 'best echo.exact_match_parrot', setting: 'v weight=0.25' })]);
    // Drawn: a panel against the weight, its axis saying which way is better.
    expect(s.charts.map((c) => c.id)).toContain('score-vs-weight-v');
    const html = await readFile(s.files.html, 'utf8');
    expect(html).toContain('"share of answers that repeat the question, lower is better"');
    expect(html).toContain('echo.exact_match_parrot (lowest)');
  });
});
