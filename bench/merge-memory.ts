/**
 * Merge memory and throughput on checkpoints of real size. Generates three Llama-shaped bf16
 * sharded checkpoints (a base and two fine-tunes of it) of more than 2 GiB each, then in the same
 * run times a plain copy of the same files and three merges (task_arithmetic, ties, dare_ties),
 * each merge in a child process so its peak RSS (VmHWM) is its own. Throughput is GB of input
 * read per second; ratios are against the copy. The files are fresh in the page cache, so this
 * measures our code more than the disk.
 *
 *   npx tsx bench/merge-memory.ts [--dir /tmp/mergelab-bench-merge] [--layers 15] [--methods task_arithmetic,ties,dare_ties] [--threads N] [--no-copy]
 *
 * Targets: task_arithmetic >= 0.5x the copy, ties and dare_ties >= 0.25x, peak RSS < 2 GB.
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { f32ToBf16 } from '../src/checkpoint/dtype.js';
import { CheckpointWriter } from '../src/checkpoint/writer.js';
import { argOr as arg } from './args.js';

const dir = path.resolve(arg('dir', path.join(os.tmpdir(), 'mergelab-bench-merge')));
const LAYERS = Number(arg('layers', '15'));
const HIDDEN = 2048;
const INTER = 8192;
const VOCAB = 32000;
const SHARD = 1e9;
const MODELS = ['base', 'math', 'chat'] as const;

function shapes(): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [VOCAB, HIDDEN]]];
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}.`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.push([`${p}self_attn.${n}.weight`, [HIDDEN, HIDDEN]]);
    out.push([`${p}mlp.gate_proj.weight`, [INTER, HIDDEN]], [`${p}mlp.up_proj.weight`, [INTER, HIDDEN]], [`${p}mlp.down_proj.weight`, [HIDDEN, INTER]]);
    out.push([`${p}input_layernorm.weight`, [HIDDEN]], [`${p}post_attention_layernorm.weight`, [HIDDEN]]);
  }
  out.push(['model.norm.weight', [HIDDEN]], ['lm_head.weight', [VOCAB, HIDDEN]]);
  return out;
}

/** xorshift32 uniform in [-1, 1): fast enough to fill 3 GB of weights in seconds. */
function fillUniform(a: Float32Array, seed: number, scale: number, add?: Float32Array): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const u = ((x >>> 0) / 2147483648 - 1) * scale;
    a[i] = add ? add[i] + u : u;
  }
}

async function generate(): Promise<void> {
  const meta = path.join(dir, 'bench-meta.json');
  const want = JSON.stringify({ LAYERS, HIDDEN, INTER, VOCAB, SHARD, v: 1 });
  try {
    if ((await fs.readFile(meta, 'utf8')) === want) {
      console.log(`reusing checkpoints in ${dir}`);
      return;
    }
  } catch {
    /* generate */
  }
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const writers = await Promise.all(MODELS.map((m) => CheckpointWriter.create(path.join(dir, m), { dtype: 'BF16', shardSize: SHARD })));
  let k = 0;
  for (const [name, shape] of shapes()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const base = new Float32Array(n);
    fillUniform(base, 1 + k * 3, 0.02);
    const tuned = new Float32Array(n);
    const half = new Uint16Array(n);
    await writers[0].addRaw(name, 'BF16', shape, new Uint8Array(f32ToBf16(base, half).buffer));
    for (let m = 1; m < 3; m++) {
      // Fine-tunes move weights by ~1/20 of their scale, like real supervised fine-tunes.
      fillUniform(tuned, 7 + k * 3 + m, 0.001, base);
      await writers[m].addRaw(name, 'BF16', shape, new Uint8Array(f32ToBf16(tuned, half).buffer));
    }
    k++;
  }
  const config = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: HIDDEN, intermediate_size: INTER, num_hidden_layers: LAYERS, num_attention_heads: 16, num_key_value_heads: 16, vocab_size: VOCAB };
  for (const w of writers) await w.finish({ config, extraFiles: { 'tokenizer.json': '{}' } });
  await fs.writeFile(meta, want);
  console.log(`generated 3 checkpoints in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function filesOf(m: string): Promise<string[]> {
  return (await fs.readdir(path.join(dir, m))).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(dir, m, f));
}

async function inputBytes(): Promise<number> {
  let total = 0;
  for (const m of MODELS) for (const f of await filesOf(m)) total += (await fs.stat(f)).size;
  return total;
}

/** cp's way (copy_file_range in the kernel), and a user-space read/write loop like ours. */
async function copyBench(): Promise<{ cp: number; rw: number }> {
  const out = path.join(dir, 'copy');
  const run = async (how: 'cp' | 'rw') => {
    await fs.rm(out, { recursive: true, force: true });
    await fs.mkdir(out);
    const t0 = performance.now();
    const buf = Buffer.allocUnsafe(64 << 20);
    for (const m of MODELS) {
      for (const f of await filesOf(m)) {
        const dst = path.join(out, `${m}-${path.basename(f)}`);
        if (how === 'cp') {
          await fs.copyFile(f, dst);
          continue;
        }
        const src = await fs.open(f, 'r');
        const w = await fs.open(dst, 'w');
        let pos = 0;
        for (;;) {
          const { bytesRead } = await src.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) break;
          await w.write(buf, 0, bytesRead, pos);
          pos += bytesRead;
        }
        await src.close();
        await w.close();
      }
    }
    const s = (performance.now() - t0) / 1000;
    await fs.rm(out, { recursive: true, force: true });
    return s;
  };
  return { cp: await run('cp'), rw: await run('rw') };
}

const RECIPES: Record<string, string> = {
  task_arithmetic: 'models:\n  - model: math\n    parameters: {weight: 0.5}\n  - model: chat\n    parameters: {weight: 0.5}',
  ties: 'models:\n  - model: math\n    parameters: {weight: 0.5, density: 0.5}\n  - model: chat\n    parameters: {weight: 0.5, density: 0.5}',
  dare_ties: 'models:\n  - model: math\n    parameters: {weight: 0.5, density: 0.5}\n  - model: chat\n    parameters: {weight: 0.5, density: 0.5}',
};

function vmHwmBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

/** Child: one merge, then print its time and peak RSS as JSON on the last line. */
async function child(method: string): Promise<void> {
  const { runRecipe } = await import('../src/merge/engine.js');
  const threads = Number(arg('threads', '0')) || Math.min(os.availableParallelism(), 8);
  // As `mergelab merge --backend typed` runs it: the engine owns its kernels (and reuses their buffers).
  process.env.MERGELAB_THREADS = String(threads);
  const text = `merge_method: ${method}\nbase_model: base\n${RECIPES[method] ?? ''}\ndtype: bfloat16\n`;
  const out = path.join(dir, `out-${method}`);
  const rssBefore = vmHwmBytes();
  const t0 = performance.now();
  const r = await runRecipe({ text, file: `${method}.yaml`, dir }, { outDir: out, backend: 'typed', seed: 1 });
  const secs = (performance.now() - t0) / 1000;
  await fs.rm(out, { recursive: true, force: true });
  console.log(JSON.stringify({ method, secs, peakRss: vmHwmBytes(), rssBeforeMerge: rssBefore, threads, warnings: r.warnings.length }));
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return child(arg('child', ''));
  if (process.argv.includes('--idle-child')) {
    await import('../src/merge/engine.js');
    console.log(JSON.stringify({ peakRss: vmHwmBytes() }));
    return;
  }
  await generate();
  const bytes = await inputBytes();
  console.log(`input: 3 checkpoints, ${(bytes / 1e9).toFixed(2)} GB of safetensors (${(bytes / 3 / 2 ** 30).toFixed(2)} GiB each), ${LAYERS} layers, hidden ${HIDDEN}, vocab ${VOCAB}, ${os.cpus().length} cores`);
  const methods = arg('methods', 'task_arithmetic,ties,dare_ties').split(',');
  const tsx = path.resolve('node_modules/.bin/tsx');
  const self = path.resolve('bench/merge-memory.ts');
  const extra = process.argv.includes('--threads') ? ['--threads', arg('threads', '0')] : [];
  const idle = JSON.parse((await execa(tsx, [self, '--idle-child'])).stdout.trim().split('\n').pop()!);
  // --no-copy: compare merge settings alone (ratios then need the copy figures of another run).
  const copy = process.argv.includes('--no-copy') ? { cp: NaN, rw: NaN } : await copyBench();
  const copyGbps = bytes / 1e9 / copy.cp;
  const rwGbps = bytes / 1e9 / copy.rw;
  const rows: string[] = [];
  rows.push(`copy (fs.copyFile, like cp)     ${copy.cp.toFixed(1).padStart(6)} s  ${copyGbps.toFixed(2)} GB/s  1.00x`);
  rows.push(`copy (read/write 64 MB buffer)  ${copy.rw.toFixed(1).padStart(6)} s  ${rwGbps.toFixed(2)} GB/s  ${(rwGbps / copyGbps).toFixed(2)}x`);
  for (const m of methods) {
    const r = await execa(tsx, [self, '--child', m, '--dir', dir, ...extra], { stderr: 'inherit' });
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const gbps = bytes / 1e9 / j.secs;
    rows.push(
      `${m.padEnd(32)}${j.secs.toFixed(1).padStart(6)} s  ${gbps.toFixed(2)} GB/s  ${(gbps / copyGbps).toFixed(2)}x cp, ${(gbps / rwGbps).toFixed(2)}x rw   peak RSS ${(j.peakRss / 2 ** 30).toFixed(2)} GiB (${j.threads} threads)`,
    );
  }
  console.log(`node + engine modules alone: peak RSS ${(idle.peakRss / 2 ** 20).toFixed(0)} MiB`);
  for (const r of rows) console.log(r);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
