import type { ResultRecord } from '../results/record.js';
import { seedOf, settingLabel, varyingAxes } from './metrics.js';

/** The records of one merge setting (variant + axes) over its seeds. */
export interface SettingGroup {
  key: string;
  variant: string;
  axes: ResultRecord['axes'];
  label: string;
  records: ResultRecord[];
  seeds: (number | null)[];
}

/** Identity of a record's setting: variant and every axis but the seed. */
export function settingKey(r: Pick<ResultRecord, 'variant' | 'axes'>): string {
  return JSON.stringify([r.variant, Object.entries(r.axes).filter(([k]) => k !== 'seed').sort(([a], [b]) => a.localeCompare(b))]);
}

/** Group merges by variant and every axis except the seed, in first-seen order. */
export function groupBySetting(records: readonly ResultRecord[], labelAxes?: readonly string[]): SettingGroup[] {
  const axes = labelAxes ?? varyingAxes(records);
  const groups = new Map<string, SettingGroup>();
  for (const r of records) {
    const settingAxes = Object.fromEntries(Object.entries(r.axes).filter(([k]) => k !== 'seed'));
    const key = settingKey(r);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, variant: r.variant, axes: settingAxes, label: settingLabel(r, axes), records: [], seeds: [] }));
    g.records.push(r);
    g.seeds.push(seedOf(r));
  }
  return [...groups.values()];
}
