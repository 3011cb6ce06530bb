/**
 * Answer extraction as lm-eval does it: a named pipeline of steps turns a raw model output into
 * the string that is compared with the target (e.g. "strict": the number after `#### `;
 * "flexible": the last number anywhere).
 */
import type { FilterPipeline, FilterStep } from './task.js';
import { compileRegex } from './regex.js';

/**
 * Python's re.findall then lm-eval's choice: the `group_select`-th match (negative counts from
 * the end); with several groups the first non-empty one; no match gives `fallback`.
 */
export function regexExtract(text: string, pattern: string, groupSelect = 0, fallback = '[invalid]'): string {
  const re = compileRegex(pattern, 'g');
  const matches = [...text.matchAll(re)];
  if (matches.length === 0) return fallback;
  const idx = groupSelect < 0 ? matches.length + groupSelect : groupSelect;
  const m = matches[idx];
  if (!m) return fallback;
  let value: string | undefined;
  if (m.length === 1) value = m[0];
  else if (m.length === 2) value = m[1] ?? '';
  else value = m.slice(1).find((g) => g !== undefined && g !== '');
  return value === undefined ? fallback : value.trim();
}

function applyStep(text: string, step: FilterStep): string {
  switch (step.function) {
    case 'regex':
      return regexExtract(text, step.pattern, step.group_select, step.fallback);
    case 'take_first':
      // One generation per item: lm-eval's take_first picks the first of the repeats.
      return text;
    case 'strip':
      return text.trim();
    case 'lowercase':
      return text.toLowerCase();
  }
}

export function applyFilter(text: string, pipeline: FilterPipeline): string {
  return pipeline.steps.reduce(applyStep, text);
}
