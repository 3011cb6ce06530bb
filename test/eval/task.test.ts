import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTask, parseDataset, parseTaskSpec } from '../../src/eval/task.js';
import { renderTemplate } from '../../src/eval/template.js';

const REPO = path.resolve(__dirname, '../..');

describe('shipped eval suites', () => {
  it('load and validate, with the sizes the sets are meant to have', async () => {
    const evals = path.join(REPO, 'evals');
    const math = await loadTask('math', evals);
    const chat = await loadTask('chat', evals);
    const lm = await loadTask('lm', evals);
    expect(math.spec.type).toBe('generate_until');
    expect(math.rows.length).toBeGreaterThanOrEqual(300);
    expect(chat.rows.length).toBeGreaterThanOrEqual(300);
    expect(lm.rows.length).toBeGreaterThanOrEqual(100);
    expect(renderTemplate((math.spec as { prompt: string }).prompt, math.rows[0])).toMatch(/^Question: .*\nAnswer:$/);
    expect(renderTemplate((chat.spec as { prompt: string }).prompt, chat.rows[0])).toMatch(/^<\|user\|>.*\n<\|assistant\|>$/);
  });
  it('an unknown suite lists the known ones', async () => {
    await expect(loadTask('gsm8k', path.join(REPO, 'evals'))).rejects.toThrow(/no task description at .*gsm8k\.yaml \(known suites: .*math/);
  });
});

describe('task yaml validation names file and field', () => {
  const file = '/x/bad.yaml';
  it('missing and mistyped fields', () => {
    expect(() => parseTaskSpec('task: t\ntype: generate_until\ndataset: d.jsonl\nid_field: id\nprompt: "{{q}}"\ntarget: "{{a}}"\nfilters: []\nmetrics: [{metric: exact_match}]\n', file))
      .toThrow(/\/x\/bad\.yaml: field "generation": .*\n.*\/x\/bad\.yaml: field "filters": /s);
    expect(() => parseTaskSpec('task: t\ntype: ifeval\ndataset: d\nid_field: k\nprompt: p\ngeneration: {max_new_tokens: -1}\nmetrics: [accuracy]\n', file))
      .toThrow(/field "generation\.max_new_tokens"[\s\S]*field "metrics\.0"/);
  });
  it('unknown type, unknown keys and bad regexes', () => {
    expect(() => parseTaskSpec('task: t\ntype: multiple_choice\n', file)).toThrow(/field "type"/);
    expect(() => parseTaskSpec('task: t\ntype: loglikelihood_rolling\ndataset: d\nid_field: id\ntext_field: text\nmetrics: [perplexity]\ntemperature: 1\n', file)).toThrow(/temperature/);
    expect(() => parseTaskSpec('task: t\ntype: loglikelihood_rolling\ndataset: d\nid_field: id\ntext_field: text\nmetrics: [perplexity]\n', file)).not.toThrow();
    const bad = 'task: t\ntype: generate_until\ndataset: d\nid_field: id\nprompt: p\ntarget: t\ngeneration: {max_new_tokens: 8}\nfilters: [{name: s, steps: [{function: regex, pattern: "(["}]}]\nmetrics: [{metric: exact_match}]\n';
    expect(() => parseTaskSpec(bad, file)).toThrow(/field "filters\.0\.steps\.0\.pattern": not a valid regex/);
  });
  it('invalid YAML', () => {
    expect(() => parseTaskSpec('task: [', file)).toThrow(/\/x\/bad\.yaml: not valid YAML/);
  });
});

describe('dataset validation names file, line and field', () => {
  const spec = parseTaskSpec('task: chat\ntype: ifeval\ndataset: d.jsonl\nid_field: key\nprompt: "{{prompt}}"\ngeneration: {max_new_tokens: 8}\nmetrics: [prompt_level_strict]\n', 'c.yaml');
  it('reports missing fields, bad JSON, duplicate ids and bad instructions', () => {
    const lines = [
      JSON.stringify({ key: 1, prompt: 'a', instruction_id_list: ['startend:quotation'], kwargs: [{}] }),
      '{oops',
      JSON.stringify({ key: 1, prompt: 'b', instruction_id_list: ['startend:quotation'], kwargs: [{}] }),
      JSON.stringify({ key: 2, instruction_id_list: ['no:such'], kwargs: [{}] }),
      JSON.stringify({ key: 3, prompt: 'c', instruction_id_list: ['mergelab:repeat_word'], kwargs: [{ word: 'x' }] }),
    ].join('\n');
    let msg = '';
    try {
      parseDataset(lines, spec, 'd.jsonl');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/d\.jsonl:2: not valid JSON/);
    expect(msg).toMatch(/d\.jsonl:3: field "key" repeats id 1/);
    expect(msg).toMatch(/d\.jsonl:4: field "prompt" is missing/);
    expect(msg).toMatch(/d\.jsonl:4: .*unknown instruction id "no:such"/);
    expect(msg).toMatch(/d\.jsonl:5: field "instruction_id_list\[0\]".*n:/);
  });
  it('a yaml pointing at a missing dataset names the yaml and the field', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'eval-task-'));
    writeFileSync(path.join(dir, 'x.yaml'), 'task: x\ntype: loglikelihood_rolling\ndataset: nope.jsonl\nid_field: id\ntext_field: text\nmetrics: [perplexity]\n');
    await expect(loadTask('x', dir)).rejects.toThrow(/x\.yaml: field "dataset": file .*nope\.jsonl cannot be read/);
  });
});
