import { describe, expect, it } from 'vitest';
import { buildReportModel } from '../../src/report/generate.js';
import { renderPage } from '../../src/report/html.js';
import { crimeText, settingCrimes, shapeMismatchNotes } from '../../src/report/crimes.js';
import { resolveOptions } from '../../src/report/options.js';
import type { ResultRecord } from '../../src/results/record.js';
import { rec, refs, scores } from './helpers.js';

/**
 * A point merged with allow_crimes (a model left out of tensors whose shapes differ) is marked
 * wherever its setting appears, and listed with what was left out in the collapse section.
 */

const mismatch: NonNullable<ResultRecord['shapeMismatches']> = [
  {
    stage: 'stage1',
    model: 'wide',
    reference: 'base',
    tensors: [
      { tensor: 'model.embed_tokens.weight', shape: [101, 24], referenceShape: [101, 16] },
      { tensor: 'model.layers.0.mlp.up_proj.weight', shape: [40, 24], referenceShape: [32, 16] },
    ],
  },
];

const records = (): ResultRecord[] => [
  ...refs(),
  rec({ point: 'v w=0.3', axes: { w: 0.3 }, metrics: scores(0.6, 0.7, 10.2), recipe: 'merge_method: task_arithmetic\n' }),
  // Collapsed (math far below the math parent) and merged despite mismatched shapes.
  rec({ point: 'v w=0.6', axes: { w: 0.6 }, metrics: scores(0.05, 0.1, 30, 0.6), recipe: 'merge_method: task_arithmetic\n', shapeMismatches: mismatch }),
];

describe('points merged despite shape mismatches', () => {
  it('says what was left out, per record and per setting; references and clean points say nothing', () => {
    const rs = records();
    expect(crimeText(rs[4])).toBe("stage stage1: model 'wide' left out of 2 tensors whose shape differs from 'base', e.g. model.embed_tokens.weight [101, 24] vs [101, 16]");
    expect(crimeText(rs[3])).toBeNull();
    expect(shapeMismatchNotes(rs).map((n) => n.point)).toEqual(['v w=0.6']);
    expect(settingCrimes([rs[3], rs[4]])).toBe(crimeText(rs[4]));
    expect(settingCrimes([rs[3]])).toBeNull();
  });

  it('the page marks the setting in the collapse table and lists the point beside the collapses', () => {
    const model = buildReportModel(records(), resolveOptions(undefined, {}), 'crimes');
    expect(model.crimes.map((c) => c.point)).toEqual(['v w=0.6']);
    expect(model.flags.map((f) => f.point)).toContain('v w=0.6');
    const html = renderPage(model, { vega: '' }, { renderer: 'svg' });
    const collapsed = html.slice(html.indexOf('<section id="collapsed">'), html.indexOf('</section>', html.indexOf('<section id="collapsed">')));
    expect(collapsed).toContain('<h3>Merged despite shape mismatches: 1 point</h3>');
    expect(collapsed).toContain('left out of 2 tensors whose shape differs from &#39;base&#39;');
    // The flagged setting's row carries the marker, with what was left out in its title.
    const row = collapsed.split('<tr>').find((r) => r.includes('w=0.6') && r.includes('collapsed'));
    expect(row).toMatch(/w=0\.6 <span class="bad" title="stage stage1: model &#39;wide&#39; left out of 2 tensors[^"]*">shapes differ \(allow_crimes\)<\/span>/);
    // One marker per place the setting appears, none for the clean one.
    expect(html.split('shapes differ (allow_crimes)').length - 1).toBeGreaterThanOrEqual(1);
    expect(html.split('<tr>').filter((r) => r.includes('w=0.3') && r.includes('shapes differ')).length).toBe(0);
  });

  it('a report without such points has no such section', () => {
    const model = buildReportModel(records().slice(0, 4), resolveOptions(undefined, {}), 'clean');
    expect(model.crimes).toEqual([]);
    expect(renderPage(model, { vega: '' }, { renderer: 'svg' })).not.toContain('shape mismatches');
  });
});
