/**
 * A stage's `chat_template`, as mergekit reads it: the name of a template it ships, `auto` (the
 * template most of the stage's input models carry, the first seen on a tie), or a Jinja template
 * written out. The output's tokenizer_config.json takes it. Pure.
 */
import { nearest } from '../util/suggest.js';

/** Templates by name, for the chat formats mergekit names; each written here, not copied. */
export const BUILT_IN_CHAT_TEMPLATES: Readonly<Record<string, string>> = {
  chatml:
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  llama3:
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  // A system message goes in front of the first user turn: the format has no place of its own for it.
  mistral:
    "{{ bos_token }}{% set system = namespace(text='') %}{% for message in messages %}" +
    "{% if message['role'] == 'system' %}{% set system.text = message['content'] + '\\n\\n' %}" +
    "{% elif message['role'] == 'user' %}{{ '[INST] ' + system.text + message['content'] + ' [/INST]' }}{% set system.text = '' %}" +
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
  alpaca:
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}" +
    "{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
};

export const AUTO_CHAT_TEMPLATE = 'auto';

/** What is wrong with a `chat_template` value, or null. A short value without `{` is taken as a name. */
export function chatTemplateProblem(value: string): string | null {
  if (value === AUTO_CHAT_TEMPLATE || value in BUILT_IN_CHAT_TEMPLATES) return null;
  if (value.length >= 20 && value.includes('{')) return null;
  const near = nearest(value, [AUTO_CHAT_TEMPLATE, ...Object.keys(BUILT_IN_CHAT_TEMPLATES)]);
  return `unknown chat template "${value}"${near ? ` (did you mean ${near}?)` : ''}: expected auto, one of ${Object.keys(BUILT_IN_CHAT_TEMPLATES).join(', ')}, or a Jinja template written out`;
}

/** The template a tokenizer_config.json carries (a list of named templates gives its "default"), or null. */
export function templateOfConfig(config: Record<string, unknown> | null): string | null {
  const t = config?.chat_template;
  if (typeof t === 'string') return t.trim() || null;
  if (Array.isArray(t)) {
    const d = t.find((x): x is { name: string; template: string } => !!x && typeof x === 'object' && (x as { name?: unknown }).name === 'default' && typeof (x as { template?: unknown }).template === 'string');
    return d ? d.template.trim() || null : null;
  }
  return null;
}

/**
 * The template a stage's output gets for `value`, given the templates its input models carry (in
 * the recipe's order); null when `auto` finds none (the output then keeps what it copied).
 */
export function pickChatTemplate(value: string, inputTemplates: readonly (string | null)[]): string | null {
  if (value !== AUTO_CHAT_TEMPLATE) return BUILT_IN_CHAT_TEMPLATES[value] ?? value;
  const counts = new Map<string, number>();
  for (const t of inputTemplates) if (t !== null) counts.set(t, (counts.get(t) ?? 0) + 1);
  let best: string | null = null;
  for (const [t, n] of counts) if (best === null || n > counts.get(best)!) best = t;
  return best;
}
