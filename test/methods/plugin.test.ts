/**
 * A method that lives in one file outside src/ (test/fixtures/methods/toy-drop.ts: random, one
 * parameter) goes through everything a built-in method does, with no file of mergelab touched:
 * validated before any tensor is read, keyed and swept by seed, cached, merged by sweep workers.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO, readJsonl, tempDir, tinyZoo } from '../sweep/helpers.js';

const FIXTURE = path.join(REPO, 'test/fixtures/methods/toy-drop.ts');
/** A copy of the fixture, so that the test can edit it; set in beforeAll. */
let plugin = '';

function mergelab(args: string[], env: Record<string, string> = { MERGELAB_METHODS: plugin }) {
  return execa('node', ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, reject: false, all: true, env });
}

const experiment = (keep: string) => `name: toy
models: {base: zoo:base, math: zoo:math, chat: zoo:chat}
seeds: [1, 2]
eval: {suites: [lm], limit: 2, samples: 0}
recipe: |
  merge_method: toy_drop
  base_model: base
  models:
    - model: math
    - model: chat
  parameters: {keep: \${keep}}
  dtype: float32
sweep:
  grid:
    keep: [${keep}]
`;

describe('a merge method defined in one file outside src/', () => {
  let zoo: string;
  let work: string;
  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('plugin-method');
    plugin = path.join(work, 'toy-drop.ts');
    const define = path.join(REPO, 'src/methods/define.js');
    await fs.writeFile(plugin, (await fs.readFile(FIXTURE, 'utf8')).replace('../../../src/methods/define.js', define));
  });

  it('is validated like a built-in: a bad parameter is named at its line before any tensor is read', async () => {
    const recipe = path.join(work, 'toy.yaml');
    await fs.writeFile(recipe, 'merge_method: toy_drop\nbase_model: base\nmodels:\n  - model: math\nparameters:\n  keep: 1.5\n');
    const dirs = ['base', 'math'].flatMap((m) => ['--model-dir', `${m}=${path.join(zoo, m)}`]);
    const bad = await mergelab(['validate', recipe, ...dirs]);
    expect(bad.exitCode, bad.all).not.toBe(0);
    expect(bad.all).toContain('toy.yaml:6:9: keep 1.5 is outside (0, 1] (the probability that an element of a task vector is kept)');
    await fs.writeFile(recipe, 'merge_method: toy_drop\nbase_model: base\nmodels:\n  - model: math\n');
    expect((await mergelab(['validate', recipe, ...dirs])).all).toContain("missing required global parameter 'keep' for merge_method toy_drop");
    await fs.writeFile(recipe, 'merge_method: toy_drop\nbase_model: base\nmodels:\n  - model: math\nparameters: {keep: 0.5}\n');
    const good = await mergelab(['validate', recipe, ...dirs]);
    expect(good.exitCode, good.all).toBe(0);
    // Without the module the name is unknown: nothing in src/ knows it.
    const unknown = await mergelab(['validate', recipe, ...dirs], {});
    expect(unknown.all).toMatch(/unknown merge_method "toy_drop"/);
  });

  it('is swept over seeds and keep, merged once per (keep, seed), and served from the cache on a rerun', async () => {
    const file = path.join(work, 'toy-exp.yaml');
    await fs.writeFile(file, experiment('0.3, 0.9'));
    const reports = path.join(work, 'reports');
    const args = ['run', file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--progress', 'none', '--no-report', '--keep-models'];
    const r = await mergelab(args);
    expect(r.exitCode, r.all).toBe(0);
    // A random method gets the seed axis: 2 keeps x 2 seeds, each its own stage.
    expect(r.all).toMatch(/merges performed: 4\b/);
    const rs = await readJsonl(path.join(reports, 'toy', 'results.jsonl'));
    const merged = rs.filter((x) => x.role === 'merge');
    expect(merged.map((x) => [x.axes, x.seed, x.status])).toEqual([
      [{ keep: 0.3 }, 1, 'ok'],
      [{ keep: 0.3 }, 2, 'ok'],
      [{ keep: 0.9 }, 1, 'ok'],
      [{ keep: 0.9 }, 2, 'ok'],
    ]);
    expect(merged.every((x) => Number.isFinite((x.metrics as { lm: { perplexity: number } }).lm.perplexity))).toBe(true);

    // The seed reaches the method's random stream: the two seeds' merges differ, byte for byte.
    const stages = path.join(reports, 'toy', 'cache', 'stages');
    const weights = async (key: string) => fs.readFile(path.join(stages, key, 'model.safetensors'));
    const keys = (await fs.readdir(stages)).filter((k) => !k.startsWith('.'));
    expect(keys).toHaveLength(4);
    const meta = await Promise.all(keys.map(async (k) => JSON.parse((await weights(k)).subarray(8, 8 + Number((await weights(k)).readBigUInt64LE(0))).toString()).__metadata__ as Record<string, string>));
    expect(meta.map((m) => m.mergelab_method)).toEqual(['toy_drop', 'toy_drop', 'toy_drop', 'toy_drop']);
    expect(meta.map((m) => m.mergelab_seed).sort()).toEqual(['1', '1', '2', '2']);
    const bytes = await Promise.all(keys.map(weights));
    expect(new Set(bytes.map((b) => b.toString('base64'))).size).toBe(4);

    const again = await mergelab(args);
    expect(again.exitCode, again.all).toBe(0);
    expect(again.all).toMatch(/merges performed: 0\b/);
    expect(again.all).toMatch(/evaluations performed: 0\b/);

    // The method's code keys its merges, as the engine's code keys the built-in ones: an edit to
    // the module means nothing it merged before is served again.
    await fs.appendFile(plugin, '// edited\n');
    const dry = await mergelab([...args, '--dry-run']);
    expect(dry.exitCode, dry.all).toBe(0);
    expect(dry.all.match(/^\[to run\] toy /gm)).toHaveLength(4);
  });
});
