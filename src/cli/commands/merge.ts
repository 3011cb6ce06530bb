/** `mergelab merge RECIPE OUT_PATH` (or `--out DIR`): one recipe (one or several stages) into a Hugging Face folder. */
import path from 'node:path';
import type { Command } from 'commander';
import type { SingleBar } from 'cli-progress';
import { removeTempsOf } from '../../util/atomic.js';
import { UserError } from '../../util/errors.js';
import { EXIT } from '../exit.js';
import { trapInterrupts } from '../interrupt.js';
import { addMergekitOptions, resolveMergekitOptions, type MergekitOptionValues } from '../mergekit-flags.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

// k, m and b alone are mergekit's `parse_kmb` (thousand, million, billion: `--out-shard-size 5B`).
const UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, b: 1e9, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `5B`, `500M`, `5e9`, `2GB`, `500MiB` -> bytes; 0 (mergekit: no sharding) -> one shard whatever the size. */
export function parseByteSize(s: string, flag: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const v = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (v === 0) return Number.MAX_SAFE_INTEGER;
  if (!(v >= 1)) throw new UserError(`${flag} ${JSON.stringify(s)}: expected a size in bytes such as 5B (mergekit's 5 billion), 500M, 5e9, 2GB or 500MiB`, { field: flag });
  return Math.floor(v);
}

export function parseSeed(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n)) throw new UserError(`--seed ${JSON.stringify(s)}: expected a non-negative integer`, { field: '--seed' });
  return n;
}

const gb = (b: number) => (b / 1e9).toFixed(2);

type MergeFlags = MergekitOptionValues & { out?: string; seed?: string; backend: string; modelDir: string[]; outShardSize: string; keepIntermediate?: boolean; force?: boolean };

export function register(program: Command): void {
  const cmd = program
    .command('merge')
    .description('merge a mergekit recipe (one or several --- stages) into a Hugging Face model folder; the output folder is required, as OUT_PATH or --out')
    .argument('<recipe>', 'mergekit YAML recipe; a later stage may name an earlier one as a model')
    .argument('[out_path]', 'output model folder, as mergekit-yaml CONFIG OUT_PATH takes it (required unless --out is given)')
    .usage('<recipe> <out_path> [options]  (or <recipe> --out <dir> [options])')
    .option('--out <dir>', 'output model folder, required unless OUT_PATH is given (written atomically; an existing one is replaced only if mergelab wrote it, see --force)')
    .option('--seed <n>', 'seed of every random mask (DARE, della); recorded in the output (default 0)')
    .option('--backend <name>', 'kernel backend: auto, typed, tfjs, tfjs-node-gpu, tfjs-node, tfjs-wasm, tfjs-cpu', 'auto')
    .option('--model-dir <name=path>', 'folder for a model named in the recipe (repeatable), e.g. mistralai/Mistral-7B-v0.1=/models/mistral', collect, [])
    .option('--out-shard-size <bytes>', 'largest output shard in bytes (5B as in mergekit, 500M, 5e9, 2GB, 500MiB; 0 = one shard)', '5B')
    .option('--keep-intermediate', 'keep intermediate stage outputs in <out>.stages/<name>')
    .option('--force', 'replace the output folder even if mergelab did not write it (deleting what is in it)');
  addMergekitOptions(cmd).action(async (recipe: string, outPath: string | undefined, o: MergeFlags) => {
    const mk = resolveMergekitOptions(o, outPath);
    const seed = parseSeed(mk.seed);
    const outShardSize = parseByteSize(mk.outShardSize, '--out-shard-size');
    const [{ runRecipe }, { parseModelDirFlags }, { default: cliProgress }] = await Promise.all([import('../../merge/engine.js'), import('../../recipe/recipe.js'), import('cli-progress')]);
    const modelDirs = parseModelDirFlags(o.modelDir);
    for (const n of mk.notes) process.stderr.write(`mergelab merge: ${n}\n`);
    const tty = process.stderr.isTTY === true && !mk.quiet;
    let bar: SingleBar | null = null;
    let stageStart = 0;
    const started = Date.now();
    let bytesRead = 0; // finished stages
    let stageBytes = 0; // the running stage
    const out = path.resolve(mk.outDir);
    // A merge publishes its folder only when complete: stopping between two tensors loses the
    // work done but leaves nothing half-written and no temporary folder.
    const stop = trapInterrupts({
      onSoft: () => 'stopping the merge after the tensor being merged',
      onForcedExit: () => `interrupted: nothing written to ${out}; run the same command again to merge from the start`,
      cleanup: () => {
        // The writer's temporary folders and the intermediate stages: hidden siblings of the output
        // named with this process's id (another merge's are left alone).
        removeTempsOf(path.dirname(out), new Set([process.pid]), 0);
      },
    });
    try {
      const result = await runRecipe(recipe, {
        outDir: mk.outDir,
        seed,
        backend: mk.backend,
        threads: mk.threads,
        copyTokenizer: mk.copyTokenizer,
        allowCrimes: mk.allowCrimes,
        modelCard: mk.writeModelCard,
        modelDirs,
        outShardSize,
        keepIntermediate: o.keepIntermediate,
        force: o.force,
        signal: stop.soft,
        onStage: ({ stage, index, count }) => {
          bar?.stop();
          bytesRead += stageBytes;
          stageBytes = 0;
          stageStart = Date.now();
          const label = `stage ${index + 1}/${count} ${stage.name} (${stage.method})`;
          if (!tty) {
            if (!mk.quiet) process.stderr.write(`${label}\n`);
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
        onProgress: (_stage, p) => {
          stageBytes = p.bytesDone;
          if (!bar) return;
          const secs = (Date.now() - stageStart) / 1000;
          bar.setTotal(p.tensorsTotal);
          bar.update(p.tensorsDone, { gbDone: gb(p.bytesDone), gbTotal: gb(p.bytesTotal), rate: secs > 0 ? (p.bytesDone / 1e9 / secs).toFixed(2) : '-' });
        },
      });
      (bar as SingleBar | null)?.stop();
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
    } catch (e) {
      (bar as SingleBar | null)?.stop();
      if (!stop.soft.aborted) throw e;
      process.stderr.write(`interrupted: nothing written to ${out} (a merge is published only when complete; its temporary folders are removed); run the same command again to merge from the start\n`);
      process.exitCode = EXIT.interrupted;
    } finally {
      stop.dispose();
    }
  });
}
