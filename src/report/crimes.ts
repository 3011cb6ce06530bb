import type { ResultRecord } from '../results/record.js';

/**
 * Points merged although some of their models' tensors differ in shape from the stage's reference
 * model (the experiment's allow_crimes, mergekit's --allow-crimes). Each such model was left out of
 * those tensors and the embeddings were cropped to the common block, so the point's scores are not
 * those of the recipe as written: the page marks the point wherever its setting is shown and lists
 * what was left out beside the collapses. Pure: records in, text out.
 */

export interface CrimeNote {
  point: string;
  variant: string;
  axes: ResultRecord['axes'];
  seed: number | null;
  /** One sentence per model, joined: which stage, which model, how many tensors, one example. */
  text: string;
}

type Mismatch = NonNullable<ResultRecord['shapeMismatches']>[number];

function describe(m: Mismatch): string {
  const n = m.tensors.length;
  const t = m.tensors[0];
  const example = t ? `, e.g. ${t.tensor} [${t.shape.join(', ')}] vs [${t.referenceShape.join(', ')}]` : '';
  return `stage ${m.stage}: model '${m.model}' left out of ${n} tensor${n === 1 ? '' : 's'} whose shape differs from '${m.reference}'${example}`;
}

/** What was left out of a record's merge, or null when nothing was. */
export function crimeText(r: ResultRecord): string | null {
  const ms = r.shapeMismatches ?? [];
  return ms.length ? ms.map(describe).join('; ') : null;
}

/** Every merged point that carries shape mismatches, in record order. */
export function shapeMismatchNotes(records: readonly ResultRecord[]): CrimeNote[] {
  const out: CrimeNote[] = [];
  for (const r of records) {
    const text = r.role === 'merge' ? crimeText(r) : null;
    if (text !== null) out.push({ point: r.point, variant: r.variant, axes: r.axes, seed: r.seed, text });
  }
  return out;
}

/** For a setting (its seeds' records): what was left out, when any of them carries mismatches. */
export function settingCrimes(records: readonly ResultRecord[]): string | null {
  const texts = [...new Set(records.map(crimeText).filter((t): t is string => t !== null))];
  return texts.length ? texts.join('; ') : null;
}
