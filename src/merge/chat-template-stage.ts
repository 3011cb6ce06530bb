/**
 * A stage's `chat_template` applied to its output: the tokenizer_config.json the output would get
 * (the one the stage built, else the one copied from the config's model) with `chat_template` set.
 * mergekit saves nothing when no tokenizer is written, and says so; so does this.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pickChatTemplate, templateOfConfig } from '../tokenizer/chat-template.js';
import { TOKENIZER_CONFIG } from '../tokenizer/files.js';

async function readConfig(dir: string): Promise<Record<string, unknown> | null> {
  try {
    const v = JSON.parse(await fs.readFile(path.join(dir, TOKENIZER_CONFIG), 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * The tokenizer_config.json to write instead, as `{ [name]: text }` (empty: nothing to change).
 * `built`: the text of the config the stage built, if any; `copiedFrom`: the folder tokenizer
 * files are copied from, if they are; `inputs`: the stage's models in recipe order.
 */
export async function chatTemplateFiles(
  value: string,
  opts: { stage: string; built: string | null; copiedFrom: string | null; inputs: readonly string[]; warnings: string[] },
): Promise<Record<string, string>> {
  const config = opts.built !== null ? (JSON.parse(opts.built) as Record<string, unknown>) : opts.copiedFrom !== null ? await readConfig(opts.copiedFrom) : null;
  if (config === null) {
    opts.warnings.push(`stage ${opts.stage}: chat_template is set but the output gets no ${TOKENIZER_CONFIG} (no tokenizer is copied or built), so the template is not saved`);
    return {};
  }
  const template = pickChatTemplate(value, await Promise.all(opts.inputs.map(async (dir) => templateOfConfig(await readConfig(dir)))));
  if (template === null) {
    opts.warnings.push(`stage ${opts.stage}: chat_template: auto found no chat template in the input models; the output keeps ${opts.copiedFrom !== null && opts.built === null ? 'the copied one' : 'none'}`);
    return {};
  }
  return { [TOKENIZER_CONFIG]: JSON.stringify({ ...config, chat_template: template }, null, 2) + '\n' };
}
