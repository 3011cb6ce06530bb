/**
 * `chat_template`: the built-in templates render the formats they are named after (worked out by
 * hand), `auto` takes the template most input models carry, and a merge writes the result into the
 * output's tokenizer_config.json; a bad value is an error at its field before anything is merged.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILT_IN_CHAT_TEMPLATES, chatTemplateProblem, pickChatTemplate, templateOfConfig } from '../../src/tokenizer/chat-template.js';
import { mergelab } from '../cli/helpers.js';
import { tempDir, tinyZoo } from '../sweep/helpers.js';

const conversation = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello' },
  { role: 'user', content: '2+2?' },
];

function render(name: string): string {
  return new Template(BUILT_IN_CHAT_TEMPLATES[name]).render({ messages: conversation, add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>' });
}

describe('built-in chat templates', () => {
  it('chatml', () => {
    expect(render('chatml')).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n');
  });
  it('llama3', () => {
    const turn = (role: string, text: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n${text}<|eot_id|>`;
    expect(render('llama3')).toBe(`<s>${turn('system', 'Be brief.')}${turn('user', 'Hi')}${turn('assistant', 'Hello')}${turn('user', '2+2?')}<|start_header_id|>assistant<|end_header_id|>\n\n`);
  });
  it('mistral: the system message goes in front of the first user turn only', () => {
    expect(render('mistral')).toBe('<s>[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] 2+2? [/INST]');
  });
  it('alpaca', () => {
    expect(render('alpaca')).toBe('Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello</s>\n\n### Instruction:\n2+2?\n\n### Response:\n');
  });
});

describe('choosing the template', () => {
  it('accepts auto, a built-in name or Jinja text; names the nearest for a typo', () => {
    expect(chatTemplateProblem('auto')).toBeNull();
    expect(chatTemplateProblem('chatml')).toBeNull();
    expect(chatTemplateProblem("{{ messages[0]['content'] }} and more")).toBeNull();
    expect(chatTemplateProblem('chatmll')).toBe('unknown chat template "chatmll" (did you mean chatml?): expected auto, one of chatml, llama3, mistral, alpaca, or a Jinja template written out');
    // Short, or without a tag: not a template.
    expect(chatTemplateProblem('{{ x }}')).toMatch(/^unknown chat template/);
    expect(chatTemplateProblem('a long sentence that is not a template')).toMatch(/^unknown chat template/);
  });

  it('auto: the template most inputs carry, the first seen on a tie, none when no input has one', () => {
    expect(pickChatTemplate('auto', ['A', 'B', 'B', null])).toBe('B');
    expect(pickChatTemplate('auto', ['A', 'B', null])).toBe('A');
    expect(pickChatTemplate('auto', [null, null])).toBeNull();
    expect(pickChatTemplate('chatml', ['A'])).toBe(BUILT_IN_CHAT_TEMPLATES.chatml);
    expect(pickChatTemplate('{{ mine }} with some more text', [])).toBe('{{ mine }} with some more text');
  });

  it('reads a tokenizer_config.json template, or the "default" of a list of named ones', () => {
    expect(templateOfConfig({ chat_template: ' T \n' })).toBe('T');
    expect(templateOfConfig({ chat_template: [{ name: 'tool_use', template: 'X' }, { name: 'default', template: 'D' }] })).toBe('D');
    expect(templateOfConfig({})).toBeNull();
    expect(templateOfConfig(null)).toBeNull();
  });
});

describe('chat_template in a merge', () => {
  let zoo: string;
  let work: string;
  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('chat-template');
  }, 300_000);

  const recipe = (value: string) => `merge_method: task_arithmetic\nbase_model: ${path.join(zoo, 'base')}\nmodels:\n  - model: ${path.join(zoo, 'math')}\n    parameters: {weight: 1}\nchat_template: ${value}\n`;
  const config = async (dir: string) => JSON.parse(await fs.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;

  it('writes the named template into the copied tokenizer_config.json, the rest unchanged; auto takes the inputs\'', async () => {
    const file = path.join(work, 'named.yaml');
    await fs.writeFile(file, recipe('chatml'));
    const r = await mergelab(['merge', file, path.join(work, 'named')]);
    expect(r.exitCode, r.all).toBe(0);
    const base = await config(path.join(zoo, 'base'));
    expect(await config(path.join(work, 'named'))).toEqual({ ...base, chat_template: BUILT_IN_CHAT_TEMPLATES.chatml });

    await fs.writeFile(file, recipe('auto'));
    const a = await mergelab(['merge', file, path.join(work, 'auto')]);
    expect(a.exitCode, a.all).toBe(0);
    expect((await config(path.join(work, 'auto'))).chat_template).toBe(templateOfConfig(base));
  }, 300_000);

  it('says so when no tokenizer is written, and refuses a bad value at its field before merging', async () => {
    const file = path.join(work, 'bad.yaml');
    await fs.writeFile(file, recipe('chatml'));
    const none = await mergelab(['merge', file, path.join(work, 'none'), '--no-copy-tokenizer']);
    expect(none.exitCode, none.all).toBe(0);
    expect(none.all).toContain('stage stage1: chat_template is set but the output gets no tokenizer_config.json (no tokenizer is copied or built), so the template is not saved');

    await fs.writeFile(file, recipe('chatmll'));
    for (const args of [['validate', file], ['merge', file, path.join(work, 'bad')]]) {
      const r = await mergelab(args);
      expect(r.exitCode, r.all).toBe(1);
      expect(r.all).toContain('bad.yaml:6:16: field chat_template: unknown chat template "chatmll" (did you mean chatml?)');
    }
    await expect(fs.stat(path.join(work, 'bad'))).rejects.toThrow();
  }, 300_000);
});
