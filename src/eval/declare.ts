/**
 * The declarations a suite's results carry (src/results/metric.ts): what the YAML says about each
 * metric it lists, plus how the evaluator aggregates that metric type and what its unit is, and
 * the metrics every suite of a type reports on its own (items counted, degenerate outputs).
 */
import { ITEMS_UNIT, type MetricSpec, type ScoredMetricSpec } from '../results/metric.js';
import type { MetricDeclaration, TaskSpec } from './task.js';

/**
 * Each metric type the evaluator computes, declared beside how it is computed: how items add up
 * (fixed by the code) and the direction, role and unit a YAML entry gets unless it states its own.
 */
const TYPES: Record<MetricDeclaration['metric'], ScoredMetricSpec> = {
  exact_match: { role: 'skill', higherIsBetter: true, aggregation: 'proportion', unit: 'share of items' },
  prompt_level_strict: { role: 'skill', higherIsBetter: true, aggregation: 'proportion', unit: 'share of prompts' },
  prompt_level_loose: { role: 'skill', higherIsBetter: true, aggregation: 'proportion', unit: 'share of prompts' },
  inst_level_strict: { role: 'skill', higherIsBetter: true, aggregation: 'ratio', unit: 'share of instructions' },
  inst_level_loose: { role: 'skill', higherIsBetter: true, aggregation: 'ratio', unit: 'share of instructions' },
  nll_per_token: { role: 'quality', higherIsBetter: false, aggregation: 'ratio', unit: 'nats per token' },
  perplexity: { role: 'quality', higherIsBetter: false, aggregation: 'exp_ratio', unit: 'exp of nats per token' },
  bits_per_char: { role: 'quality', higherIsBetter: false, aggregation: 'ratio', unit: 'bits per character' },
};

/** Reported for every generation task: outputs that are empty or loop to the token limit. */
export const DEGENERATE_RATE: MetricSpec = { role: 'quality', higherIsBetter: false, aggregation: 'proportion', unit: 'share of generations' };
const ITEMS: MetricSpec = { role: 'count', unit: ITEMS_UNIT };
const TOKENS: MetricSpec = { role: 'count', unit: 'tokens' };

function fromYaml(d: MetricDeclaration): MetricSpec {
  const t = TYPES[d.metric];
  return { role: d.role ?? t.role, higherIsBetter: d.higher_is_better ?? t.higherIsBetter, aggregation: t.aggregation, unit: d.unit ?? t.unit };
}

/** Every metric a suite reports, by the name it reports it under, in report order. Pure. */
export function suiteMetricSpecs(spec: TaskSpec): Record<string, MetricSpec> {
  const out: Record<string, MetricSpec> = { n: ITEMS };
  if (spec.type === 'generate_until') {
    for (const f of spec.filters) for (const m of spec.metrics) out[`${m.metric}_${f.name}`] = fromYaml(m);
  } else {
    for (const m of spec.metrics) out[m.metric] = fromYaml(m);
  }
  if (spec.type === 'loglikelihood_rolling') out.tokens = TOKENS;
  else out.degenerate_rate = DEGENERATE_RATE;
  return out;
}
