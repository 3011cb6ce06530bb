import { describe, expect, it } from 'vitest';
import { detectCollapses } from '../../src/report/collapse.js';
import { headlines, stageNames } from '../../src/report/headlines.js';
import { rec, refs, scores } from './helpers.js';

const CHAIN = 'name: first\nmerge_method: dare_ties\n---\nname: second\nmerge_method: task_arithmetic\n';
const FIRST = 'name: first\nmerge_method: dare_ties\n';

const EXPECT = { alone: ['math'] };

function run(records: ReturnType<typeof rec>[], expect: Record<string, string[]> = EXPECT): string[] {
  const all = [...refs(), ...records];
  return headlines(all, detectCollapses(all, undefined, undefined, expect), 0.5, expect);
}

describe('headline findings', () => {
  it('reads stage names of a multi-document recipe, numbering unnamed ones', () => {
    expect(stageNames(CHAIN)).toEqual(['first', 'second']);
    expect(stageNames('merge_method: linear\n')).toEqual(['stage 1']);
    expect(stageNames(null)).toEqual([]);
  });

  it('names the worst variant, its scores against the parents, and the last stage as the one that lost math', () => {
    const h = run([
      rec({ point: 'c1', variant: 'chain', recipe: CHAIN, metrics: scores(0.0, 0.85, 11) }),
      rec({ point: 'c2', variant: 'chain', recipe: CHAIN, metrics: scores(0.1, 0.8, 11) }),
      rec({ point: 'a1', variant: 'alone', recipe: FIRST, metrics: scores(0.7, 0.3, 11) }),
    ]);
    expect(h[0]).toBe("2 of 3 merged points collapsed; most in 'chain' (2 of 2).");
    expect(h[1]).toContain('math.exact_match_strict 0.05');
    expect(h[1]).toContain('parent math: 0.8');
    expect(h[2]).toMatch(/^'chain' loses it in its last stage: math.exact_match_strict 0.05 after stage 'second' against 0.7 for stage 'first' alone \('alone', 1 points\)/);
  });

  it('says the skill was already gone in the earlier stage when that stage alone lost it too', () => {
    const h = run([
      rec({ point: 'c1', variant: 'chain', recipe: CHAIN, metrics: scores(0.0, 0.85, 11) }),
      rec({ point: 'c2', variant: 'chain', recipe: CHAIN, metrics: scores(0.0, 0.85, 11) }),
      rec({ point: 'a1', variant: 'alone', recipe: FIRST, metrics: scores(0.1, 0.3, 11) }),
    ]);
    expect(h[2]).toMatch(/^The skill is already lost in the earlier stage: math.exact_match_strict 0 after stage 'second' against 0.1 for stage 'first' alone/);
  });

  it('does not blame the earlier stage for a skill it is not meant to keep (it enters later)', () => {
    const recs = [
      rec({ point: 'c1', variant: 'chain', recipe: CHAIN, metrics: scores(0.0, 0.2, 11) }),
      rec({ point: 'c2', variant: 'chain', recipe: CHAIN, metrics: scores(0.0, 0.2, 11) }),
      rec({ point: 'a1', variant: 'alone', recipe: FIRST, metrics: scores(0.7, 0.0, 11) }),
    ];
    const h = run(recs);
    expect(h[2]).toBe(
      "'chain' loses it in its last stage: math.exact_match_strict 0 after stage 'second' against 0.7 for stage 'first' alone ('alone', 1 points); chat.prompt_level_strict 0.2 after stage 'second' (stage 'first' alone is not meant to keep it).",
    );
    // Without expectations every lost skill is held against the earlier stage, as before.
    expect(run(recs, {})[2]).toMatch(/^The skill is already lost in the earlier stage: .*chat.prompt_level_strict 0.2 after stage 'second' against 0 for stage 'first' alone/);
  });

  it('says when no variant isolates the earlier stage', () => {
    const h = run([rec({ point: 'c1', variant: 'chain', recipe: CHAIN, metrics: scores(0.0, 0.85, 11) })]);
    expect(h[2]).toBe("'chain' loses math.exact_match_strict; no variant evaluates its earlier stage (first) alone, so which stage lost it is not measured.");
  });
});
