import { parseAllDocuments } from 'yaml';
import type { ResultRecord } from '../results/record.js';
import type { CollapseFlag } from './collapse.js';
import { mean as meanOf, references } from './collapse.js';
import { fmt, listMetrics, metricValue, type MetricInfo } from './metrics.js';

/**
 * The three findings a user reads first, as sentences: how much collapsed and where, what the
 * worst variant kept of each parent's skill, and in which stage a multi-stage variant lost it
 * (by comparing with a variant that evaluates its earlier stage alone). A skill that variant is
 * not meant to keep (`expect`: variant -> parents whose skills it should keep) cannot have been
 * lost there: it enters in a later stage. Pure.
 */
export function headlines(records: readonly ResultRecord[], flags: readonly CollapseFlag[], parentFraction = 0.5, expect: Readonly<Record<string, readonly string[]>> = {}): string[] {
  const merges = records.filter((r) => r.role === 'merge' && r.status === 'ok');
  if (!merges.length) return [];
  const byVariant = groupBy(merges, (r) => r.variant);
  const flagged = groupBy(flags, (f) => f.variant);
  const [worst] = [...byVariant.keys()].sort((a, b) => (flagged.get(b)?.length ?? 0) - (flagged.get(a)?.length ?? 0) || a.localeCompare(b));
  const out = [`${flags.length} of ${merges.length} merged points collapsed; most in '${worst}' (${flagged.get(worst)?.length ?? 0} of ${byVariant.get(worst)!.length}).`];

  const refs = references(records);
  const skills = primarySkills(listMetrics(records));
  const mean = (rs: readonly ResultRecord[], m: MetricInfo): number | undefined => meanOf(rs.map((r) => metricValue(r, m.key)).filter((v): v is number => v !== undefined));
  const kept = skills.flatMap((m) => {
    const best = refs.bestParent(m);
    const v = mean(byVariant.get(worst)!, m);
    return best && v !== undefined ? [{ m, best, v }] : [];
  });
  if (kept.length) out.push(`'${worst}' scores ${kept.map(({ m, best, v }) => `${m.key} ${fmt(v)} (parent ${best.name}: ${fmt(best.value)})`).join(', ')}.`);

  const lost = kept.filter(({ best, v }) => best.value > 0 && v < parentFraction * best.value);
  const stages = stageNames(byVariant.get(worst)![0].recipe);
  if (lost.length && stages.length > 1) {
    const earlier = stages.slice(0, -1);
    const prefix = [...byVariant.entries()].find(([name, rs]) => name !== worst && earlier.includes(stageNames(rs[0].recipe).at(-1) ?? ''));
    if (prefix) {
      const [pname, prs] = prefix;
      const pstage = stageNames(prs[0].recipe).at(-1)!;
      const meantEarly = (k: (typeof lost)[number]) => !expect[pname] || expect[pname].includes(k.best.name);
      const parts = lost.map((k) =>
        meantEarly(k)
          ? `${k.m.key} ${fmt(k.v)} after stage '${stages.at(-1)}' against ${fmt(mean(prs, k.m) ?? NaN)} for stage '${pstage}' alone ('${pname}', ${prs.length} points)`
          : `${k.m.key} ${fmt(k.v)} after stage '${stages.at(-1)}' (stage '${pstage}' alone is not meant to keep it)`,
      );
      const lostEarly = lost.some((k) => meantEarly(k) && (mean(prs, k.m) ?? 0) < parentFraction * k.best.value);
      out.push(`${lostEarly ? 'The skill is already lost in the earlier stage' : `'${worst}' loses it in its last stage`}: ${parts.join('; ')}.`);
    } else {
      out.push(`'${worst}' loses ${lost.map(({ m }) => m.key).join(', ')}; no variant evaluates its earlier stage${earlier.length > 1 ? 's' : ''} (${earlier.join(', ')}) alone, so which stage lost it is not measured.`);
    }
  }
  return out;
}

/** The first skill metric of each suite (e.g. math.exact_match_strict, chat.prompt_level_strict). */
function primarySkills(metrics: readonly MetricInfo[]): MetricInfo[] {
  const seen = new Set<string>();
  return metrics.filter((m) => m.isSkill && !/(^|_)n$|count/.test(m.metric) && !seen.has(m.suite) && (seen.add(m.suite), true));
}

/** Stage names of a (multi-document) recipe, in file order; unnamed stages are numbered. */
export function stageNames(recipe: string | null): string[] {
  if (!recipe) return [];
  return parseAllDocuments(recipe).flatMap((d, i) => {
    if (!('toJS' in d)) return [];
    const js = d.toJS() as { name?: unknown } | null;
    return js ? [typeof js.name === 'string' ? js.name : `stage ${i + 1}`] : [];
  });
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}
