/**
 * Checkpoint I/O throughput: bf16<->f32 conversion alone, then a generated sharded bf16
 * checkpoint read (raw and decoded to f32) and written (f32 -> bf16), beside a plain file copy
 * of the same shards in the same run. Figures are MB/s of bf16 bytes; files are fresh in the
 * page cache, so this measures our code more than the disk.
 *   npx tsx bench/checkpoint-io.ts [--mb 512] [--shard-mb 128]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bf16ToF32, f32ToBf16, f16ToF32, f32ToF16 } from '../src/checkpoint/dtype.js';
import { openCheckpoint } from '../src/checkpoint/reader.js';
import { CheckpointWriter } from '../src/checkpoint/writer.js';
import { numArg as arg } from './args.js';

async function time<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

const MB = 2 ** 20;
const totalMb = arg('mb', 512);
const shardMb = arg('shard-mb', 128);
const rows: Array<[string, number]> = [];
let peakRss = 0;
const sampleRss = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };

async function convertOnly(): Promise<void> {
  const n = (Math.min(totalMb, 256) * MB) / 2;
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = Math.sin(i) * 0.02;
  const h = new Uint16Array(n);
  const cases: Array<[string, () => unknown]> = [
    ['f32 -> bf16 (convert only)', () => f32ToBf16(f, h)],
    ['bf16 -> f32 (convert only)', () => bf16ToF32(h, f)],
    ['f32 -> f16 (convert only)', () => f32ToF16(f, h)],
    ['f16 -> f32 (convert only)', () => f16ToF32(h, f)],
  ];
  for (const [label, fn] of cases) {
    fn(); // warm the JIT
    const [, s] = await time(fn);
    rows.push([label, (n * 2) / MB / s]);
  }
}
// Its arrays go out of scope before the checkpoint part, so they don't count toward its peak RSS.
await convertOnly();
(globalThis as { gc?: () => void }).gc?.();

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mergelab-bench-ckpt-'));
try {
  // Llama-ish tensor sizes: 4096 x 11008 (86 MiB bf16) capped to the total.
  const perTensor = Math.min(4096 * 11008, (totalMb * MB) / 2 / 4);
  const count = Math.max(1, Math.round((totalMb * MB) / 2 / perTensor));
  const data = new Float32Array(perTensor);
  for (let i = 0; i < perTensor; i++) data[i] = Math.cos(i * 0.7) * 0.02;
  const src = path.join(root, 'src');
  const [, wS] = await time(async () => {
    const w = await CheckpointWriter.create(src, { dtype: 'BF16', shardSize: shardMb * MB });
    for (let t = 0; t < count; t++) { await w.addF32(`model.layers.${t}.mlp.up_proj.weight`, [perTensor], data); sampleRss(); }
    await w.finish({ config: { architectures: ['LlamaForCausalLM'] } });
  });
  const bytes = count * perTensor * 2;
  rows.push(['write f32 -> bf16 shards', bytes / MB / wS]);

  const shards = (await fs.readdir(src)).filter((x) => x.endsWith('.safetensors'));
  const dst = path.join(root, 'copy');
  await fs.mkdir(dst);
  const [, cS] = await time(async () => {
    // Read and write through user space like a merge would, not a kernel-side copy.
    for (const s of shards) await fs.writeFile(path.join(dst, s), await fs.readFile(path.join(src, s)));
  });
  rows.push(['plain copy of the shards (readFile+writeFile)', bytes / MB / cS]);

  const ck = await openCheckpoint(src);
  const [, rS] = await time(async () => {
    for (const name of ck.tensorNames()) { await ck.readRaw(name); sampleRss(); }
  });
  rows.push(['read raw bf16, tensor by tensor', bytes / MB / rS]);
  const [, fS] = await time(async () => {
    for (const name of ck.tensorNames()) { await ck.readF32(name); sampleRss(); }
  });
  rows.push(['read + decode bf16 -> f32, tensor by tensor', bytes / MB / fS]);
  const reuse = new Float32Array(perTensor);
  const [, uS] = await time(async () => {
    for (const name of ck.tensorNames()) { await ck.readF32(name, reuse); sampleRss(); }
  });
  rows.push(['read + decode bf16 -> f32 into a reused buffer', bytes / MB / uS]);
  await ck.close();

  console.log(`checkpoint I/O: ${count} tensors x ${(perTensor * 2 / MB).toFixed(0)} MiB bf16 = ${(bytes / MB).toFixed(0)} MiB in ${shards.length} shards; ${os.cpus().length} CPUs`);
  for (const [label, mbs] of rows) console.log(`  ${label.padEnd(48)} ${mbs.toFixed(0).padStart(7)} MB/s`);
  console.log(`  peak RSS ${(peakRss / MB).toFixed(0)} MiB (largest tensor: ${(perTensor * 4 / MB).toFixed(0)} MiB as f32)`);
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
