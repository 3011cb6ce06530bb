import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { runRecipe, type MergeProgress } from '../../merge/engine.js';
import { parseModelDirFlags } from '../../recipe/recipe.js';
import { UserError } from '../../util/errors.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `5e9`, `2GB`, `500MiB` -> bytes. */
export function parseByteSize(s: string, flag: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const v = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!(v >= 1)) throw new UserError(`${flag} ${JSON.stringify(s)}: expected a size in bytes such as 5e9, 2GB or 500MiB`, { field: flag });
  return Math.floor(v);
}

export function parseSeed(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n)) throw new UserError(`--seed ${JSON.stringify(s)}: expected a non-negative integer`, { field: '--seed' });
  return n;
}

const gb = (b: number) => (b / 1e9).toFixed(2);

export function register(program: Command): void {
  program
    .command('merge')
    .description('merge a mergekit recipe (one or several --- stages) into a Hugging Face model folder')
    .argument('<recipe>', 'mergekit YAML recipe; a later stage may name an earlier one as a model')
    .requiredOption('--out <dir>', 'output model folder (written atomically; an existing one is replaced only if mergelab wrote it, see --force)')
    .option('--seed <n>', 'seed of every random mask (DARE, della); recorded in the output', '0')
    .option('--backend <name>', 'kernel backend: auto, typed, tfjs, tfjs-node-gpu, tfjs-node, tfjs-wasm, tfjs-cpu', 'auto')
    .option('--model-dir <name=path>', 'folder for a model named in the recipe (repeatable), e.g. mistralai/Mistral-7B-v0.1=/models/mistral', collect, [])
    .option('--out-shard-size <bytes>', 'largest output shard (5e9, 2GB, 500MiB)', '5e9')
    .option('--keep-intermediate', 'keep intermediate stage outputs in <out>.stages/<name>')
    .option('--force', 'replace --out even if mergelab did not write it (deleting what is in it)')
    .option('--allow-crimes', 'merge models whose tensors differ in shape from the base (each is left out of those tensors, embeddings cropped); without it they are an error')
    .action(async (recipe: string, o: { out: string; seed: string; backend: string; modelDir: string[]; outShardSize: string; keepIntermediate?: boolean; force?: boolean; allowCrimes?: boolean }) => {
      const seed = parseSeed(o.seed);
      const outShardSize = parseByteSize(o.outShardSize, '--out-shard-size');
      const modelDirs = parseModelDirFlags(o.modelDir);
      const tty = process.stderr.isTTY === true;
      let bar: cliProgress.SingleBar | null = null;
      let stageStart = 0;
      const started = Date.now();
      let bytesRead = 0; // finished stages
      let stageBytes = 0; // the running stage
      const result = await runRecipe(recipe, {
        outDir: o.out,
        seed,
        backend: o.backend,
        modelDirs,
        outShardSize,
        keepIntermediate: o.keepIntermediate,
        force: o.force,
        allowCrimes: o.allowCrimes,
        onStage: ({ stage, index, count }) => {
          bar?.stop();
          bytesRead += stageBytes;
          stageBytes = 0;
          stageStart = Date.now();
          const label = `stage ${index + 1}/${count} ${stage.name} (${stage.method})`;
          if (!tty) {
            process.stderr.write(`${label}\n`);
            bar = null;
            return;
          }
          bar = new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: `${label} |{bar}| {percentage}% | {value}/{total} tensors | {gbDone}/{gbTotal} GB | {rate} GB/s | ETA {eta_formatted}`,
              hideCursor: true,
              etaBuffer: 50,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(1, 0, { gbDone: '0.00', gbTotal: '?', rate: '-' });
        },
        onProgress: (_stage, p: MergeProgress) => {
          stageBytes = p.bytesDone;
          if (!bar) return;
          const secs = (Date.now() - stageStart) / 1000;
          bar.setTotal(p.tensorsTotal);
          bar.update(p.tensorsDone, { gbDone: gb(p.bytesDone), gbTotal: gb(p.bytesTotal), rate: secs > 0 ? (p.bytesDone / 1e9 / secs).toFixed(2) : '-' });
        },
      });
      (bar as cliProgress.SingleBar | null)?.stop();
      const secs = (Date.now() - started) / 1000;
      const bytesIn = bytesRead + stageBytes;
      const lines = [
        `merged ${result.recipe.file} -> ${result.outputDir}`,
        `  stages: ${result.stages.map((s) => `${s.stage} (${s.method}${s.rescaleRule !== 'none' ? `, rescale ${s.rescaleRule}` : ''})`).join(' -> ')}`,
        `  backend ${result.backend}, seed ${result.seed}, ${secs.toFixed(1)} s, ${gb(bytesIn)} GB read, ${(bytesIn / 1e9 / Math.max(secs, 1e-9)).toFixed(2)} GB/s`,
      ];
      if (result.warnings.length) {
        lines.push(`  ${result.warnings.length} warning${result.warnings.length === 1 ? '' : 's'}:`);
        for (const w of result.warnings.slice(0, 20)) lines.push(`    - ${w}`);
        if (result.warnings.length > 20) lines.push(`    ... and ${result.warnings.length - 20} more (see mergelab_diagnostics.json)`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}
