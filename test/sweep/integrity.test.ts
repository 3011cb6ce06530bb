import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CacheLayout } from '../../src/sweep/cache.js';
import { loadExperiment } from '../../src/sweep/experiment.js';
import { FolderHasher } from '../../src/sweep/hash.js';
import { buildPlan, type Plan } from '../../src/sweep/plan.js';
import { evalVersion } from '../../src/sweep/suites.js';
import { cli, readJsonl, seedShapedExperiment, stageHashes, tempDir, tinyZoo, withoutTimings } from './helpers.js';

/**
 * Fault injection: every kind of cache entry (a stage checkpoint, stage diagnostics, an
 * evaluation, point diagnostics, the hash memo, an export) truncated, emptied and with bytes
 * flipped, then the run again: it must end with the uninterrupted run's records, name each
 * damaged entry once, and put back what was kept.
 */

type Fault = 'truncate' | 'empty' | 'flip';
const FAULTS: Fault[] = ['truncate', 'empty', 'flip'];

async function damage(file: string, fault: Fault): Promise<void> {
  const buf = await fs.readFile(file);
  if (fault === 'empty') await fs.writeFile(file, '');
  else if (fault === 'truncate') await fs.writeFile(file, buf.subarray(0, Math.floor(buf.length / 2)));
  else {
    // Three bytes three quarters in: inside the tensor data of a checkpoint, inside the value of a JSON entry.
    const at = Math.floor(buf.length * 0.75);
    for (let i = at; i < at + 3; i++) buf[i] ^= 0x04;
    await fs.writeFile(file, buf);
  }
}

describe('a damaged cache entry is named, removed and recomputed', () => {
  let zoo: string;
  let expFile: string;
  let reports: string;
  let expDir: string;
  let layout: CacheLayout;
  let plan: Plan;
  let reference: Array<Record<string, unknown>>;
  let referenceStages: Map<string, string>;
  const run = () => cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--keep-models', '--progress', 'none', '--no-report']);

  beforeAll(async () => {
    zoo = await tinyZoo();
    const work = await tempDir('sweep-integrity');
    expFile = path.join(work, 'faults.yaml');
    // 9 points: 3 chained, 1 stage-1-alone, 2 ties, 3 references; 6 stages.
    await fs.writeFile(expFile, seedShapedExperiment('faults', { densities: [0.5], seeds: [1], limit: 2 }));
    reports = path.join(work, 'reports');
    expDir = path.join(reports, 'faults');
    const r = await run();
    if (r.exitCode !== 0) throw new Error(r.all);
    reference = await readJsonl(path.join(expDir, 'results.jsonl'));
    layout = new CacheLayout(path.join(expDir, 'cache'));
    referenceStages = await stageHashes(path.join(layout.root, 'stages'));
    const exp = await loadExperiment(expFile, { zooDir: zoo });
    plan = await buildPlan(exp, { hasher: new FolderHasher(null), evaluatorVersion: await evalVersion(exp) });
  });

  const point = (prefix: string) => {
    const p = plan.points.find((x) => x.id.startsWith(prefix));
    if (!p) throw new Error(`no point ${prefix}: ${plan.points.map((x) => x.id).join(', ')}`);
    return p;
  };

  it('for every entry kind, truncated, emptied and with flipped bytes (3 runs, each fault on each kind once)', { timeout: 900_000 }, async () => {
    const stage1Alone = point('stage1_only');
    const chained = point('chained');
    const ties = point('ties');
    const kinds: Array<{ name: string; file: string; warned: RegExp; prepare?: () => Promise<void> }> = [
      {
        name: 'stage checkpoint',
        file: path.join(layout.stageDir(stage1Alone.modelKey), 'model.safetensors'),
        warned: new RegExp(`damaged cache entry ${escape(layout.stageDir(stage1Alone.modelKey))}: `),
        // Its evaluation goes too (as after an evaluator upgrade), so the run must read the checkpoint.
        prepare: () => fs.rm(layout.evalFile(stage1Alone.evalKey)),
      },
      { name: 'stage diagnostics', file: layout.diagFile(ties.stages[0]), warned: new RegExp(`damaged cache entry ${escape(layout.diagFile(ties.stages[0]))}: `) },
      { name: 'evaluation', file: layout.evalFile(point('ref base').evalKey), warned: new RegExp(`damaged cache entry ${escape(layout.evalFile(point('ref base').evalKey))}: `) },
      { name: 'point diagnostics', file: layout.pointDiagFile(chained.pointDiag!.key), warned: new RegExp(`damaged cache entry ${escape(layout.pointDiagFile(chained.pointDiag!.key))}: `) },
      { name: 'hash memo', file: layout.hashMemo(), warned: new RegExp(`damaged cache entry ${escape(layout.hashMemo())}: `) },
      { name: 'export', file: path.join(expDir, 'results.csv'), warned: new RegExp(`damaged export ${escape(path.join(expDir, 'results.csv'))}: `) },
    ];
    for (let round = 0; round < FAULTS.length; round++) {
      const applied: string[] = [];
      for (let i = 0; i < kinds.length; i++) {
        const fault = FAULTS[(i + round) % FAULTS.length];
        await damage(kinds[i].file, fault);
        await kinds[i].prepare?.();
        applied.push(`${kinds[i].name}: ${fault}`);
      }
      const r = await run();
      const out = r.all ?? '';
      const what = `round ${round} (${applied.join(', ')}):\n${out}`;
      expect(r.exitCode, what).toBe(0);
      for (const k of kinds) expect(out.match(new RegExp(k.warned.source, 'g'))?.length, `${k.name} warned once, ${what}`).toBe(1);
      expect(withoutTimings(await readJsonl(path.join(expDir, 'results.jsonl'))), what).toEqual(withoutTimings(reference));
      // What was kept is back, byte for byte; the exports are whole again.
      expect(await stageHashes(path.join(layout.root, 'stages')), what).toEqual(referenceStages);
      const again = await run();
      expect(again.all, `the repair left nothing to warn about: ${what}`).not.toMatch(/damaged|warning/);
      expect(again.all).toMatch(/merges performed: 0\b/);
    }
  });

  it('a damaged upstream stage is merged again before a downstream stage reads it', { timeout: 600_000 }, async () => {
    const chained = point('chained');
    const [upstream, downstream] = chained.stages;
    await damage(path.join(layout.stageDir(upstream), 'model.safetensors'), 'flip');
    // The downstream stage must be merged again (its folder and diagnostics are gone).
    await fs.rm(layout.stageDir(downstream), { recursive: true });
    await fs.rm(layout.diagFile(downstream));
    const r = await run();
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(new RegExp(`damaged cache entry ${escape(layout.stageDir(upstream))}: .*model\\.safetensors: bytes \\d+-\\d+ do not match their checksum`));
    expect(r.all).toMatch(/merges performed: 2 \(math_dare: 1, stage2: 1\)/);
    expect(withoutTimings(await readJsonl(path.join(expDir, 'results.jsonl')))).toEqual(withoutTimings(reference));
    expect(await stageHashes(path.join(layout.root, 'stages'))).toEqual(referenceStages);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
