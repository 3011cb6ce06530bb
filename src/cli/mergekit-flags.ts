/**
 * `mergekit-yaml`'s options (mergekit/options.py `MergeOptions`) on `mergelab merge`, so a mergekit
 * command line runs unchanged. Each flag either does what it does in mergekit or, where it has
 * nothing to act on here, is accepted and explained once on stderr.
 */
import { Option, type Command } from 'commander';
import { UserError } from '../util/errors.js';

export interface MergekitOptionValues {
  copyTokenizer?: boolean;
  allowCrimes?: boolean;
  lazyUnpickle?: boolean;
  cuda?: boolean;
  device?: string;
  randomSeed?: string;
  writeModelCard?: boolean;
  trustRemoteCode?: boolean;
  safeSerialization?: boolean;
  transformersCache?: string;
  loraMergeCache?: string;
  loraMergeDtype?: string;
  lowCpuMemory?: boolean;
  cloneTensors?: boolean;
  readToGpu?: boolean;
  multiGpu?: boolean;
  gpuRich?: boolean;
  asyncWrite?: boolean;
  writeThreads?: string;
  numThreads?: string;
  verbose?: number;
  quiet?: boolean;
}

/** Flags that are accepted but change nothing here, with the reason given when one is used. */
const NO_EFFECT: Array<[keyof MergekitOptionValues, string, string]> = [
  ['lazyUnpickle', '--lazy-unpickle', 'mergelab reads safetensors only, tensor by tensor, so there is nothing to unpickle'],
  ['trustRemoteCode', '--trust-remote-code', 'mergelab never runs code from a model folder (it reads config.json, tokenizer files and safetensors)'],
  ['lowCpuMemory', '--low-cpu-memory', 'merges already stream tensor by tensor; memory stays near a few copies of the largest tensor'],
  ['readToGpu', '--read-to-gpu', 'tensors are read on the host; the --backend decides where the math runs'],
  ['multiGpu', '--multi-gpu', 'one process merges on one backend'],
  ['cloneTensors', '--clone-tensors', 'every output tensor is written from its own buffer'],
  ['asyncWrite', '--async-write', 'shards are written as tensors finish'],
  ['writeThreads', '--write-threads', 'shards are written by one writer'],
  ['transformersCache', '--transformers-cache', 'models are never downloaded; map hub names to folders with --model-dir NAME=PATH'],
  ['loraMergeCache', '--lora-merge-cache', 'LoRA references (model+lora) are not supported; merge the adapter into its model first'],
  ['loraMergeDtype', '--lora-merge-dtype', 'LoRA references (model+lora) are not supported; merge the adapter into its model first'],
];

/** Add mergekit-yaml's flags (both spellings of its boolean ones) to a command, after its own. */
export function addMergekitOptions(cmd: Command): Command {
  cmd.optionsGroup('mergekit-yaml options (so a mergekit command line runs unchanged):');
  const bool = (name: string, help: string) => {
    cmd.addOption(new Option(`--${name}`, help));
    cmd.addOption(new Option(`--no-${name}`, `turn --${name} off`).hideHelp());
  };
  bool('copy-tokenizer', 'copy the base (or first) model\'s tokenizer files to the output (default; --no-copy-tokenizer skips them)');
  bool('allow-crimes', 'merge models whose config.json names different architectures, whose tensors differ in shape from the base (each left out of those tensors, embeddings cropped) or whose vocabularies differ with no tokenizer setting; without it each is an error');
  bool('write-model-card', 'write README.md describing the merge (default; --no-write-model-card skips it)');
  bool('lazy-unpickle', 'accepted; no effect (safetensors only)');
  bool('cuda', 'do the math on a GPU: --backend auto takes tfjs-node-gpu when it loads');
  bool('trust-remote-code', 'accepted; no effect (no model code is run)');
  bool('safe-serialization', 'accepted; output is always safetensors');
  bool('low-cpu-memory', 'accepted; no effect');
  bool('clone-tensors', 'accepted; no effect');
  bool('read-to-gpu', 'accepted; no effect');
  bool('multi-gpu', 'accepted; no effect');
  bool('async-write', 'accepted; no effect');
  bool('quiet', 'no progress bar');
  cmd.option('--random-seed <n>', 'mergekit\'s name for --seed');
  cmd.option('--device <name>', 'cpu, cuda or auto: as --cuda for cuda, the typed CPU kernels for cpu');
  cmd.option('--gpu-rich', 'alias for --cuda (and mergekit\'s memory flags, which have no effect here)');
  cmd.option('-j, --num-threads <n>', 'threads of the typed CPU kernels');
  cmd.option('--write-threads <n>', 'accepted; no effect');
  cmd.option('--transformers-cache <dir>', 'accepted; no effect (use --model-dir)');
  cmd.option('--lora-merge-cache <dir>', 'accepted; LoRA references are not supported');
  cmd.option('--lora-merge-dtype <dtype>', 'accepted; LoRA references are not supported');
  cmd.option('-v, --verbose', 'accepted (repeatable); warnings are always listed', (_v: string, prev: number) => prev + 1, 0);
  return cmd;
}

export interface ResolvedMergekitOptions {
  outDir: string;
  seed: string;
  outShardSize: string;
  backend: string;
  copyTokenizer: boolean;
  writeModelCard: boolean;
  allowCrimes: boolean;
  threads: number | undefined;
  quiet: boolean;
  /** One line per flag that has no effect here (or was reinterpreted), for stderr. */
  notes: string[];
}

function positiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !(n >= 1)) throw new UserError(`${flag} ${JSON.stringify(s)}: expected a whole number of threads, at least 1`, { field: flag });
  return n;
}

/**
 * Reconcile mergelab's own flags with mergekit's: OUT_PATH or --out, --seed or --random-seed, the
 * device flags against --backend. Contradictions are errors naming both flags.
 */
export function resolveMergekitOptions(
  o: MergekitOptionValues & { out?: string; seed?: string; backend: string; outShardSize: string },
  outPath: string | undefined,
): ResolvedMergekitOptions {
  const notes: string[] = [];
  if (outPath !== undefined && o.out !== undefined && outPath !== o.out) {
    throw new UserError(`OUT_PATH ${JSON.stringify(outPath)} and --out ${JSON.stringify(o.out)} name different folders; give one of them`, { field: '--out' });
  }
  const outDir = outPath ?? o.out;
  if (outDir === undefined) throw new UserError('no output folder: give OUT_PATH after the recipe (as mergekit-yaml takes it) or --out DIR', { field: '--out' });
  if (o.seed !== undefined && o.randomSeed !== undefined && o.seed !== o.randomSeed) {
    throw new UserError(`--seed ${o.seed} and --random-seed ${o.randomSeed} disagree; give one of them`, { field: '--random-seed' });
  }
  const seed = o.seed ?? o.randomSeed ?? '0';

  let backend = o.backend;
  const wantsGpu = o.cuda === true || o.gpuRich === true || o.device === 'cuda';
  if (o.device !== undefined && !['cpu', 'cuda', 'auto'].includes(o.device)) {
    throw new UserError(`--device ${JSON.stringify(o.device)}: expected cpu, cuda or auto (or choose a backend with --backend)`, { field: '--device' });
  }
  if (wantsGpu) {
    // Not forced: a command line pasted from a GPU machine still runs here, on the CPU kernels.
    if (backend === 'auto') notes.push('--cuda: --backend auto takes tfjs-node-gpu (CUDA) when it loads and the CPU kernels otherwise; the summary names the one used');
    else if (backend !== 'tfjs-node-gpu') notes.push(`--cuda: --backend ${backend} was given and is used`);
  } else if (o.device === 'cpu' && backend === 'auto') backend = 'typed';
  if (o.gpuRich) notes.push('--gpu-rich: taken as --cuda; its memory and multi-GPU parts have no effect here');

  for (const [key, flag, why] of NO_EFFECT) {
    const v = o[key];
    if (v !== undefined && v !== false) notes.push(`${flag} has no effect: ${why}`);
  }
  if (o.safeSerialization === false) notes.push('--no-safe-serialization has no effect: mergelab writes safetensors only (pickled checkpoints can run code when loaded)');
  if ((o.verbose ?? 0) > 0) notes.push('-v has no effect: every warning is listed at the end of the merge');

  return {
    outDir,
    seed,
    outShardSize: o.outShardSize,
    backend,
    copyTokenizer: o.copyTokenizer !== false,
    writeModelCard: o.writeModelCard !== false,
    allowCrimes: o.allowCrimes === true,
    threads: o.numThreads !== undefined ? positiveInt(o.numThreads, '--num-threads') : undefined,
    quiet: o.quiet === true,
    notes,
  };
}
