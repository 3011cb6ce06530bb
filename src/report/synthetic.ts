import type { ResultRecord, Sample } from '../results/record.js';
import type { FinalVsParentsEntry } from '../results/diagnostics.js';
import type { StageDiagnostics, TensorDiagnostics } from '../merge/diagnostics.js';
import { mulberry32 } from '../util/random.js';

/*
 * A realistic result set shaped like the seed experiment's sweep (base, math and chat parents, a
 * chained DARE-TIES -> task-arithmetic merge swept over density, weight, rescale rule and seed,
 * plus alternatives). For tests, the benchmark and trying the report without running a sweep;
 * the numbers follow a plausible story (1/density rescale blows up the delta at low density), they
 * are not measurements.
 */


export interface SyntheticOptions {
  densities?: number[];
  weights?: number[];
  rescales?: string[];
  seeds?: number[];
  layers?: number;
  samplesPerSuite?: number;
  experiment?: string;
  /** Also emit one failed point. */
  withFailure?: boolean;
}

const TENSORS_PER_LAYER = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj', 'input_layernorm', 'post_attention_layernorm'];

function tensorDiag(name: string, layer: number | null, models: string[], rnd: () => number, o: { tv: number[]; kept: number[]; rescale: number[]; weights: number[]; conflict: number }): TensorDiagnostics {
  const numel = name.includes('norm') ? 64 : name.includes('embed') || name.includes('lm_head') ? 64 * 512 : 64 * 64;
  const taskVectorNorm: Record<string, number> = {};
  models.forEach((m, i) => (taskVectorNorm[m] = o.tv[i] * (0.8 + 0.4 * rnd()) * Math.sqrt(numel / 4096)));
  // Orthogonal-ish deltas: the merged norm is the root of the summed squares of what survived.
  const merged = Math.sqrt(models.reduce((a, m, i) => a + (o.weights[i] * taskVectorNorm[m] * Math.sqrt(o.kept[i]) * o.rescale[i]) ** 2, 0));
  const cosine: Record<string, number> = {};
  for (let i = 0; i < models.length; i++) for (let j = i + 1; j < models.length; j++) cosine[`${models[i]}|${models[j]}`] = 0.05 - 0.1 * rnd();
  return {
    tensor: layer === null ? name : `model.layers.${layer}.${name}.weight`,
    layer, numel, taskVectorNorm, cosine,
    signConflict: models.length > 1 ? Math.min(0.95, o.conflict * (0.85 + 0.3 * rnd())) : 0,
    keptFraction: Object.fromEntries(models.map((m, i) => [m, o.kept[i]])),
    rescale: Object.fromEntries(models.map((m, i) => [m, o.rescale[i]])),
    mergedDeltaNorm: merged,
    mergedDeltaRelToParent: Object.fromEntries(models.map((m) => [m, merged / taskVectorNorm[m]])),
  };
}

function stage(stageName: string, method: string, rescaleRule: string, seed: number, layers: number, models: string[], o: Parameters<typeof tensorDiag>[4]): StageDiagnostics {
  const rnd = mulberry32(seed * 7919 + stageName.length);
  const tensors: TensorDiagnostics[] = [tensorDiag('model.embed_tokens.weight', null, models, rnd, o)];
  for (let l = 0; l < layers; l++) for (const t of TENSORS_PER_LAYER) tensors.push(tensorDiag(t, l, models, rnd, o));
  tensors.push(tensorDiag('model.norm.weight', null, models, rnd, o), tensorDiag('lm_head.weight', null, models, rnd, o));
  const sumSq = (f: (t: TensorDiagnostics) => number): number => Math.sqrt(tensors.reduce((a, t) => a + f(t) ** 2, 0));
  const numel = tensors.reduce((a, t) => a + t.numel, 0);
  const merged = sumSq((t) => t.mergedDeltaNorm);
  const tv = Object.fromEntries(models.map((m) => [m, sumSq((t) => t.taskVectorNorm[m])]));
  return {
    stage: stageName, method, rescaleRule, seed, backend: 'synthetic', tensors,
    totals: {
      numel, taskVectorNorm: tv, cosine: tensors[0].cosine,
      signConflict: tensors.reduce((a, t) => a + t.signConflict * t.numel, 0) / numel,
      keptFraction: tensors[0].keptFraction, rescale: tensors[0].rescale, mergedDeltaNorm: merged,
      mergedDeltaRelToParent: Object.fromEntries(models.map((m) => [m, merged / tv[m]])),
    },
    warnings: [],
  };
}

/** The sweep's per-point entry: the final model against the ORIGINAL parents (src/sweep/pointDiagnostics.ts). */
function finalVsParents(seed: number, layers: number, parents: string[], o: { rel: number[]; retained: number[] }): FinalVsParentsEntry {
  const rnd = mulberry32(seed * 31 + 7);
  const tensors: FinalVsParentsEntry['tensors'] = [];
  for (let l = 0; l < layers; l++) for (const t of TENSORS_PER_LAYER) {
    const tv = Object.fromEntries(parents.map((p) => [p, 0.8 + 0.4 * rnd()]));
    const rel = Object.fromEntries(parents.map((p, i) => [p, o.rel[i] * (0.9 + 0.2 * rnd()) * (l < layers / 2 ? 1.1 : 0.9)]));
    tensors.push({
      tensor: `model.layers.${l}.${t}.weight`, layer: l, numel: t.includes('norm') ? 64 : 4096, taskVectorNorm: tv,
      cosine: Object.fromEntries(parents.map((p, i) => [`final|${p}`, Math.min(1, o.retained[i] / Math.max(o.rel[i], 1e-9))])),
      signConflict: 0.3 + 0.1 * rnd(), mergedDeltaNorm: rel[parents[0]] * tv[parents[0]], mergedDeltaRelToParent: rel,
      retained: Object.fromEntries(parents.map((p, i) => [p, o.retained[i] * (0.9 + 0.2 * rnd())])),
      signAgreement: Object.fromEntries(parents.map((p) => [p, 0.6 + 0.2 * rnd()])),
    });
  }
  return { kind: 'final-vs-parents', stage: 'final vs parents', method: 'final-vs-parents', rescaleRule: 'none', base: 'zoo:base', parents, tensors, layers: [], totals: tensors[0], warnings: [] };
}

const MATH_PROMPTS = Array.from({ length: 12 }, (_, i) => ({ id: `math-${i}`, prompt: `Tom has ${i + 3} apples and buys ${i + 2} more. How many apples does he have?`, answer: String(2 * i + 5) }));
const CHAT_PROMPTS = Array.from({ length: 12 }, (_, i) => ({ id: `chat-${i}`, prompt: `Write a short greeting in ${i % 2 ? 'lowercase' : 'exactly three words'} about the ${['sea', 'moon', 'garden'][i % 3]}.` }));

function samples(quality: { math: number; chat: number; degenerate: number }, rnd: () => number, n: number): Sample[] {
  const out: Sample[] = [];
  for (const p of MATH_PROMPTS.slice(0, n)) {
    const degenerate = rnd() < quality.degenerate;
    const correct = !degenerate && rnd() < quality.math;
    out.push({ suite: 'math', id: p.id, prompt: p.prompt, output: degenerate ? 'the the the the the the the the' : correct ? `He has ${p.answer} apples. #### ${p.answer}` : `He has ${Number(p.answer) + 3} apples. #### ${Number(p.answer) + 3}`, correct });
  }
  for (const p of CHAT_PROMPTS.slice(0, n)) {
    const degenerate = rnd() < quality.degenerate;
    const correct = !degenerate && rnd() < quality.chat;
    out.push({ suite: 'chat', id: p.id, prompt: p.prompt, output: degenerate ? '<s> <s> <s> apples apples apples' : correct ? 'hello bright sea' : 'Hello! I hope the sea finds you well today, friend.', correct });
  }
  return out;
}

function record(base: Omit<ResultRecord, 'metrics' | 'samples' | 'timings' | 'backend' | 'engineVersion' | 'status' | 'diagnostics' | 'recipe'> & { diagnostics?: ResultRecord['diagnostics']; recipe?: string | null }, q: { math: number; chat: number; ppl: number; degenerate: number }, rnd: () => number, nSamples: number): ResultRecord {
  const jitter = (v: number, s: number): number => Math.min(1, Math.max(0, v + (rnd() - 0.5) * s));
  const degenerate = Math.min(1, Math.max(0, q.degenerate));
  return {
    ...base,
    recipe: base.recipe ?? null,
    backend: 'synthetic', engineVersion: '0.0.0-synthetic', status: 'ok',
    metrics: {
      math: { exact_match_strict: jitter(q.math, 0.04), exact_match_flexible: jitter(q.math + 0.05, 0.04), degenerate_rate: degenerate },
      chat: { prompt_level_strict: jitter(q.chat, 0.04), prompt_level_loose: jitter(q.chat + 0.05, 0.04), inst_level_strict: jitter(q.chat + 0.08, 0.04), inst_level_loose: jitter(q.chat + 0.12, 0.04), degenerate_rate: degenerate },
      lm: { nll_per_token: Math.log(q.ppl), perplexity: q.ppl, bits_per_char: Math.log(q.ppl) / Math.LN2 / 4 },
    },
    timings: { merge_s: 1 + rnd(), eval_s: 3 + rnd() },
    diagnostics: base.diagnostics ?? [],
    samples: samples(q, rnd, nSamples),
  };
}

export function syntheticResults(opts: SyntheticOptions = {}): ResultRecord[] {
  const densities = opts.densities ?? [0.1, 0.3, 0.5, 0.7, 0.9, 1.0];
  const weights = opts.weights ?? [1, 0.5];
  const rescales = opts.rescales ?? ['inverse_density', 'l1'];
  const seeds = opts.seeds ?? [1, 2, 3];
  const layers = opts.layers ?? 4;
  const n = opts.samplesPerSuite ?? 4;
  const experiment = opts.experiment ?? 'synthetic';
  const out: ResultRecord[] = [];
  const refRnd = mulberry32(12345);
  const ref = (role: 'base' | 'parent', variant: string, q: { math: number; chat: number; ppl: number; degenerate: number }): void => {
    out.push(record({ experiment, point: `ref-${variant}`, role, variant, axes: {}, seed: null }, q, refRnd, n));
  };
  ref('base', 'base', { math: 0.12, chat: 0.2, ppl: 9, degenerate: 0.01 });
  ref('parent', 'math', { math: 0.7, chat: 0.18, ppl: 9.5, degenerate: 0.01 });
  ref('parent', 'chat', { math: 0.1, chat: 0.75, ppl: 9.3, degenerate: 0.01 });
  const M = 'zoo:math', C = 'zoo:chat', S1 = 'stage1';
  for (const seed of seeds) {
    for (const rescale of rescales) for (const density of densities) {
      const r1 = rescale === 'inverse_density' ? 1 / density : 1 / Math.sqrt(density);
      // Past ~2x the parent's delta the model stops being a language model: the seed's collapse.
      const blow = Math.max(0, r1 * Math.sqrt(density) - 1.25);
      const s1 = stage(S1, 'dare_ties', rescale, seed, layers, [M], { tv: [1], kept: [density], rescale: [r1], weights: [1], conflict: 0 });
      const rnd = mulberry32(seed * 1000 + Math.round(density * 100) + rescale.length);
      out.push(record({ experiment, point: `stage1_only-d${density}-${rescale}-s${seed}`, role: 'merge', variant: 'stage1_only', axes: { density, rescale }, seed, diagnostics: [s1] },
        { math: 0.68 - 0.5 * blow, chat: 0.17, ppl: 9.5 * (1 + 2 * blow), degenerate: 0.01 + 0.3 * blow }, rnd, n));
      for (const weight of weights) {
        const s2 = stage('stage2', 'task_arithmetic', 'none', seed, layers, [S1, C], { tv: [r1 * Math.sqrt(density), 1], kept: [1, 1], rescale: [1, 1], weights: [weight, weight], conflict: 0.25 + 0.1 * blow });
        const shrink = weight < 1 ? 0.15 : 0;
        const fvp = finalVsParents(seed, layers, [M, C], { rel: [r1 * Math.sqrt(density) * weight * 1.1, weight * (1 + r1 * Math.sqrt(density)) * 0.8], retained: [weight * (density < 0.5 ? r1 * density : 1), weight] });
        // Zipped axes, as in experiments/seed-repro.yaml: both stage-2 weights and normalize move together.
        out.push(record({ experiment, point: `chained-d${density}-w${weight}-${rescale}-s${seed}`, role: 'merge', variant: 'chained', axes: { density, rescale, w_stage1: weight, w_chat: weight, normalize: weight < 1 }, seed, diagnostics: [s1, s2, fvp], recipe: `# chained d=${density} w=${weight}` },
          { math: 0.6 - 0.55 * blow - shrink, chat: 0.65 - 0.5 * blow - shrink, ppl: 10 * (1 + 4 * blow * blow), degenerate: 0.02 + 0.45 * blow }, rnd, n));
      }
    }
    for (const weight of weights) {
      const rnd = mulberry32(seed * 77 + weight * 10);
      const st = stage('merge', 'ties', 'none', seed, layers, [M, C], { tv: [1, 1], kept: [0.5, 0.5], rescale: [1, 1], weights: [weight, weight], conflict: 0.45 });
      out.push(record({ experiment, point: `ties-w${weight}-s${seed}`, role: 'merge', variant: 'ties', axes: { weight }, seed, diagnostics: [st] },
        { math: 0.45 * weight + 0.1, chat: 0.5 * weight + 0.1, ppl: 10.5, degenerate: 0.02 }, rnd, n));
    }
  }
  if (opts.withFailure) {
    out.push({ ...out[out.length - 1], point: 'failed-point', status: 'failed', error: 'merge failed: out of memory', metrics: {}, samples: [], diagnostics: [] });
  }
  return out;
}
