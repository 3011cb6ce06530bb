/**
 * The README.md model card `mergekit-yaml` writes next to a merge (mergekit/card.py
 * `generate_card`): YAML front matter with the Hub models merged and the `mergekit`/`merge` tags the
 * Hub lists merges by, the method with its reference, the models, and the recipe as given.
 */
import path from 'node:path';
import YAML from 'yaml';
import type { Recipe, ResolvedStage } from '../recipe/recipe.js';

/** mergekit's pretty names and reference links (its merge method classes and `@merge_method` decorators). */
const METHODS: Record<string, [string, string | null]> = {
  linear: ['Linear', 'https://arxiv.org/abs/2203.05482'],
  slerp: ['SLERP', 'https://en.wikipedia.org/wiki/Slerp'],
  nuslerp: ['NuSLERP', null],
  multislerp: ['Multi-SLERP', 'https://goddard.blog/posts/multislerp-wow-what-a-cool-idea'],
  karcher: ['Karcher Mean', 'https://en.wikipedia.org/wiki/Karcher_mean'],
  passthrough: ['Passthrough', null],
  model_stock: ['Model Stock', 'https://arxiv.org/abs/2403.19522'],
  arcee_fusion: ['Arcee Fusion', 'https://arcee.ai'],
  nearswap: ['NearSwap', 'https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001'],
  sce: ['SCE', 'https://arxiv.org/abs/2408.07990'],
  ram: ['Reinforced Agent Merging', 'https://arxiv.org/abs/2601.13572'],
  ramplus_tl: ['Reinforced Agent Merging Plus (Tensor-Local)', 'https://arxiv.org/abs/2601.13572'],
  task_arithmetic: ['Task Arithmetic', 'https://arxiv.org/abs/2212.04089'],
  ties: ['TIES', 'https://arxiv.org/abs/2306.01708'],
  dare_ties: ['DARE TIES', 'https://arxiv.org/abs/2311.03099'],
  dare_linear: ['Linear DARE', 'https://arxiv.org/abs/2311.03099'],
  breadcrumbs: ['Model Breadcrumbs', 'https://arxiv.org/abs/2312.06795'],
  breadcrumbs_ties: ['Model Breadcrumbs with TIES', 'https://arxiv.org/abs/2312.06795'],
  della: ['DELLA', 'https://arxiv.org/abs/2406.11617'],
  della_linear: ['Linear DELLA', 'https://arxiv.org/abs/2406.11617'],
};

export function methodMarkdown(method: string): string {
  const m = METHODS[method];
  if (!m) return method;
  return m[1] ? `[${m[0]}](${m[1]})` : m[0];
}

/**
 * mergekit's `is_hf`: a reference that is not a local folder path and has at most one '/' names a
 * Hub model. Here that is a reference resolved through --model-dir (it was not found as a folder).
 */
function isHub(stage: ResolvedStage, ref: string): boolean {
  const inp = stage.inputs[ref];
  if (!inp || inp.kind !== 'path') return false;
  if (/^[/~.]/.test(ref) || ref.split('/').length > 2) return false;
  const dir = path.dirname(path.resolve(stage.file));
  return inp.path !== path.resolve(dir, ref) && inp.path !== path.resolve(ref);
}

function modelMarkdown(stage: ResolvedStage, ref: string): string {
  if (stage.inputs[ref]?.kind === 'stage') return `the output of stage \`${ref}\``;
  return isHub(stage, ref) ? `[${ref}](https://huggingface.co/${ref})` : ref;
}

function referenced(stage: ResolvedStage): string[] {
  const refs: string[] = [];
  if (stage.baseModel !== null) refs.push(stage.baseModel);
  for (const s of stage.slices) for (const src of s.sources) if (!refs.includes(src.ref)) refs.push(src.ref);
  return refs;
}

function describeStage(stage: ResolvedStage): { method: string; models: string[] } {
  // As mergekit: slerp's card names no base ("curse my past self" in card.py) and lists both models.
  const base = stage.method === 'slerp' ? null : stage.baseModel;
  const baseText = base !== null ? ` using ${modelMarkdown(stage, base)} as a base` : '';
  return {
    method: `This model was merged using the ${methodMarkdown(stage.method)} merge method${baseText}.`,
    models: referenced(stage)
      .filter((r) => r !== base)
      .map((r) => `* ${modelMarkdown(stage, r)}`),
  };
}

/** The card's markdown; `name` is the output folder's name, `recipeText` the recipe as the user wrote it. */
export function modelCard(recipe: Recipe, name: string, recipeText: string): string {
  const hub = new Set<string>();
  for (const s of recipe.stages) for (const r of referenced(s)) if (isHub(s, r)) hub.add(r);
  const meta = YAML.stringify({ base_model: [...hub], library_name: 'transformers', tags: ['mergekit', 'merge', 'mergelab'] }, { indentSeq: false }).trimEnd();
  const final = describeStage(recipe.final);
  const lines = [
    '---',
    meta,
    '---',
    `# ${name || 'Untitled Model (1)'}`,
    '',
    'This is a merge of pre-trained language models created with mergelab from a [mergekit](https://github.com/arcee-ai/mergekit) recipe.',
    '',
    '## Merge Details',
    '### Merge Method',
    '',
    final.method,
    '',
    '### Models Merged',
    '',
    'The following models were included in the merge:',
    ...final.models,
  ];
  if (recipe.stages.length > 1) {
    lines.push('', '### Stages', '', 'The recipe runs these stages in order; the last one produced this model:', '');
    for (const s of recipe.stages) {
      const d = describeStage(s);
      lines.push(`* \`${s.name}\`: ${d.method.replace(/^This model was merged/, 'merged')} Models: ${d.models.map((m) => m.slice(2)).join(', ') || 'none besides the base'}.`);
    }
  }
  lines.push('', '### Configuration', '', 'The following YAML configuration was used to produce this model:', '', '```yaml', recipeText.trimEnd(), '```', '');
  return lines.join('\n');
}
