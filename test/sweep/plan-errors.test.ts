import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initWeights } from '../../src/zoo/model.js';
import { fromHfConfig, saveZooModel } from '../../src/zoo/io.js';
import { cli, readJsonl, tempDir, tinyZoo } from './helpers.js';

/**
 * Recipe mistakes that used to pass silently are errors in validate, merge and run alike, with one
 * message naming the file and line: a stage the final stage does not use, and models whose tensors
 * differ in shape (accepted only with --allow-crimes / allow_crimes, then said once and marked on
 * the point's record).
 */

let zoo: string;
let work: string;
let wide: string;

const exitOf = async (args: string[]) => {
  const r = await cli(args);
  return { code: r.exitCode, out: r.all ?? '' };
};

beforeAll(async () => {
  zoo = await tinyZoo();
  work = await tempDir('plan-errors');
  // A zoo-shaped model of another width than the tiny zoo's base (random weights: only its shapes matter).
  const hf = JSON.parse(await fs.readFile(path.join(zoo, 'base', 'config.json'), 'utf8')) as Record<string, unknown>;
  const cfg = fromHfConfig({ ...hf, hidden_size: 24, intermediate_size: 40, head_dim: 12 }, 'wide');
  wide = path.join(work, 'wide');
  const weights = new Map([...initWeights(cfg, 7)].map(([n, t]) => [n, t.data]));
  await saveZooModel(wide, cfg, weights);
}, 300_000);

describe('a stage the final stage does not use', () => {
  // The first document is never named by a later one (the chat stage names `math` directly).
  const recipe = (base: string, math: string, chat: string) =>
    `name: math_dare\nmerge_method: dare_ties\nbase_model: ${base}\nmodels:\n  - model: ${math}\n    parameters: {weight: 1, density: 0.5}\n---\nmerge_method: task_arithmetic\nbase_model: ${base}\nmodels:\n  - model: ${math}\n    parameters: {weight: 1}\n  - model: ${chat}\n    parameters: {weight: 1}\n`;

  it('is one error naming the stage and its line in validate, merge and run', { timeout: 300_000 }, async () => {
    const file = path.join(work, 'unused.yaml');
    await fs.writeFile(file, recipe(path.join(zoo, 'base'), path.join(zoo, 'math'), path.join(zoo, 'chat')));
    const message = /unused\.yaml:1:1: stage 1 \(math_dare\): stage 1 \(math_dare\) is not used by the final stage \(the last document, 'stage2'\), so it would never be merged|unused\.yaml:1:1: .*math_dare.* is not used by the final stage \(the last document, 'stage2'\), so it would never be merged/;
    const v = await exitOf(['validate', file]);
    expect(v.code, v.out).toBe(1);
    expect(v.out).toMatch(message);
    const m = await exitOf(['merge', file, '--out', path.join(work, 'unused-out')]);
    expect(m.code, m.out).toBe(1);
    expect(m.out).toMatch(message);
    await expect(fs.access(path.join(work, 'unused-out'))).rejects.toThrow();

    const exp = path.join(work, 'unused-exp.yaml');
    const indented = recipe('${base}', '${math}', '${chat}').split('\n').map((l) => `  ${l}`).join('\n');
    await fs.writeFile(exp, `name: unused\nmodels: {base: zoo:base, math: zoo:math, chat: zoo:chat}\neval: {suites: [lm], limit: 2}\nrecipe: |\n${indented}\n`);
    const r = await exitOf(['run', exp, '--zoo', zoo, '--reports', path.join(work, 'reports')]);
    expect(r.code, r.out).toBe(1);
    // Pointed at the recipe's first line inside the experiment file.
    expect(r.out).toMatch(/unused-exp\.yaml:5:\d+: .*math_dare.* is not used by the final stage/);
  });
});

describe('models whose tensors differ in shape', () => {
  const recipeText = (base: string, other: string) => `merge_method: task_arithmetic\nbase_model: ${base}\nmodels:\n  - model: ${other}\n    parameters: {weight: 0.5}\ndtype: float32\n`;

  it('are one error per model listing the tensors in validate and merge; --allow-crimes merges and says so once', { timeout: 300_000 }, async () => {
    const file = path.join(work, 'crimes.yaml');
    await fs.writeFile(file, recipeText(path.join(zoo, 'base'), wide));
    const listing = /crimes\.yaml:4:\d+: model '.*wide' \(models\[0\]\): \d+ tensors differ in shape from '.*base' \(model\.embed_tokens\.weight \[101, 24\] vs \[101, 16\], .*, and \d+ more\); expected the shapes of .*pass --allow-crimes/;
    const v = await exitOf(['validate', file]);
    expect(v.code, v.out).toBe(1);
    expect(v.out).toMatch(/^1 problem:/m);
    expect(v.out).toMatch(listing);
    const m = await exitOf(['merge', file, '--out', path.join(work, 'crimes-out')]);
    expect(m.code, m.out).toBe(1);
    expect(m.out).toMatch(listing);

    const ok = await exitOf(['merge', file, '--out', path.join(work, 'crimes-out'), '--allow-crimes']);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out.match(/tensors differ in shape/g)?.length, ok.out).toBe(1);
    expect(ok.out).toMatch(/merged anyway \(--allow-crimes\)/);
    const va = await exitOf(['validate', file, '--allow-crimes']);
    expect(va.code, va.out).toBe(0);
  });

  it('in run: an error by default; with allow_crimes the points are merged, the warning printed once and the record marked', { timeout: 600_000 }, async () => {
    const exp = (allow: boolean) => `name: crimes\nmodels: {base: zoo:base, wide: ${wide}}\neval: {suites: [lm], limit: 2}\n${allow ? 'allow_crimes: true\n' : ''}recipe: |\n${recipeText('${base}', '${wide}').replace('0.5', '${w}').split('\n').map((l) => `  ${l}`).join('\n')}\nsweep:\n  grid:\n    w: [0.3, 0.6]\n`;
    const file = path.join(work, 'crimes-exp.yaml');
    const reports = path.join(work, 'reports');
    await fs.writeFile(file, exp(false));
    const refused = await exitOf(['run', file, '--zoo', zoo, '--reports', reports, '--progress', 'none', '--no-report']);
    expect(refused.code, refused.out).toBe(1);
    // The recipe is the same for both points: one message.
    expect(refused.out.match(/tensors differ in shape/g)?.length, refused.out).toBe(1);
    expect(refused.out).toMatch(/crimes-exp\.yaml:\d+:\d+: model 'wide' \(models\[0\]\): \d+ tensors differ in shape from 'base'/);

    await fs.writeFile(file, exp(true));
    const r = await exitOf(['run', file, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--progress', 'none', '--no-report']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.match(/tensors differ in shape/g)?.length, r.out).toBe(1);
    expect(r.out).toMatch(/^warning: variant crimes \(allow_crimes\): stage stage1: model 'wide': \d+ tensors differ in shape from 'base' \(model\.embed_tokens\.weight \[101, 24\] vs \[101, 16\]/m);
    const recs = await readJsonl(path.join(reports, 'crimes', 'results.jsonl'));
    const merged = recs.filter((x) => x.role === 'merge');
    expect(merged.map((x) => x.status)).toEqual(['ok', 'ok']);
    for (const rec of merged) {
      const sm = rec.shapeMismatches as Array<{ stage: string; model: string; reference: string; tensors: Array<{ tensor: string; shape: number[]; referenceShape: number[] }> }>;
      expect(sm.map((x) => [x.stage, x.model, x.reference])).toEqual([['stage1', 'wide', 'base']]);
      expect(sm[0].tensors).toContainEqual({ tensor: 'model.embed_tokens.weight', shape: [101, 24], referenceShape: [101, 16] });
    }
    for (const rec of recs.filter((x) => x.role !== 'merge')) expect(rec.shapeMismatches).toBeUndefined();
  });
});

describe('a parameter of the wrong type', () => {
  it('weight: abc is reported once, as a type error (no "missing required parameter" besides)', { timeout: 300_000 }, async () => {
    const file = path.join(work, 'abc.yaml');
    await fs.writeFile(file, `merge_method: ties\nbase_model: ${path.join(zoo, 'base')}\nmodels:\n  - model: ${path.join(zoo, 'math')}\n    parameters: {weight: abc, density: 0.5}\n`);
    for (const args of [['validate', file], ['merge', file, '--out', path.join(work, 'abc-out')]]) {
      const r = await exitOf(args);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`abc.yaml:5:26: model '${path.join(zoo, 'math')}' (models[0]): parameter 'weight' must be a finite number, got "abc"`);
      expect(r.out).not.toMatch(/missing required/);
      expect(r.out.match(/parameter 'weight'/g)?.length).toBe(1);
    }
  });
});
