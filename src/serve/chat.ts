/**
 * Chat requests rendered as transformers renders them: the model's `chat_template` (Jinja, from
 * tokenizer_config.json, or a file given with --chat-template) applied to the messages with
 * `bos_token`, `eos_token` and `add_generation_prompt`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { UserError } from '../util/errors.js';
import type { ChatMessage } from '../eval/backends/types.js';

export interface ChatRenderer {
  /** Where the template came from, for the log. */
  source: string;
  bosToken: string | null;
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string;
}

function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

export function chatRenderer(templateText: string, source: string, specials: { bos: string | null; eos: string | null }): ChatRenderer {
  let tpl: Template;
  try {
    tpl = new Template(templateText);
  } catch (e) {
    throw new UserError(`${source}: chat template is not valid Jinja: ${(e as Error).message}`, { file: source, field: 'chat_template' });
  }
  return {
    source,
    bosToken: specials.bos,
    render: (messages, addGenerationPrompt) =>
      tpl.render({ messages: messages.map((m) => ({ role: m.role, content: m.content })), bos_token: specials.bos ?? '', eos_token: specials.eos ?? '', add_generation_prompt: addGenerationPrompt }),
  };
}

/**
 * The chat template of a model folder (or `override`, a template file); null when it has none,
 * in which case chat requests are refused.
 */
export async function loadChatRenderer(modelDir: string, override?: string): Promise<ChatRenderer | null> {
  const cfgFile = path.join(modelDir, 'tokenizer_config.json');
  let cfg: Record<string, unknown> = {};
  try {
    cfg = JSON.parse(await fs.readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`${cfgFile}: cannot read it as JSON: ${(e as Error).message}`, { file: cfgFile });
  }
  const specials = { bos: tokenString(cfg.bos_token), eos: tokenString(cfg.eos_token) };
  if (override) {
    let text: string;
    try {
      text = await fs.readFile(override, 'utf8');
    } catch (e) {
      throw new UserError(`--chat-template ${override}: cannot read it: ${(e as Error).message}`, { field: 'chat-template' });
    }
    return chatRenderer(text, override, specials);
  }
  let t = cfg.chat_template;
  // transformers also allows a list of named templates; "default" is the one chat uses.
  if (Array.isArray(t)) t = (t.find((x) => (x as { name?: string }).name === 'default') as { template?: string } | undefined)?.template;
  if (typeof t !== 'string') return null;
  return chatRenderer(t, `${cfgFile} (chat_template)`, specials);
}
