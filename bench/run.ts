/**
 * `npm run bench`: runs every benchmark one after another (never in parallel: on two cores a
 * second job would distort the first), each in its own process, and keeps each one's output in
 * bench/out/NAME.log. Every benchmark prints its figures as ratios against a baseline measured
 * in the same run, because these machines are too noisy for absolute numbers to travel.
 *   npm run bench [-- --only kernels,report] [-- --quick]
 */
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Bench {
  name: string;
  file: string;
  args: string[];
  quickArgs: string[];
  what: string;
}

const BENCHES: Bench[] = [
  { name: 'kernels', file: 'kernels.ts', args: ['--m', '64'], quickArgs: ['--m', '4'], what: 'merge kernels: typed x1 / workers vs tfjs, radix selection vs sort' },
  { name: 'newer-methods', file: 'newer-methods.ts', args: ['--m', '16'], quickArgs: ['--m', '2', '--reps', '1'], what: 'the eight newer mergekit methods per tensor vs task_arithmetic' },
  { name: 'checkpoint-io', file: 'checkpoint-io.ts', args: ['--mb', '1024'], quickArgs: ['--mb', '64'], what: 'safetensors read/convert/write vs plain copy' },
  { name: 'checksum', file: 'checksum.ts', args: ['--mb', '512'], quickArgs: ['--mb', '64', '--rounds', '2'], what: 'cache checksum candidates (sha256, sha1, md5, xxh64, xxh3, crc32, blake3) against plain read throughput' },
  { name: 'merge-memory', file: 'merge-memory.ts', args: [], quickArgs: ['--layers', '2'], what: '3 x 2 GB bf16 checkpoints: merge throughput and peak RSS vs copy' },
  { name: 'zoo-microbatch', file: 'zoo-microbatch.ts', args: ['30'], quickArgs: ['8'], what: 'pretraining step: batch split in two, one half in a helper process, vs unsplit' },
  { name: 'eval-runners', file: 'eval-runners.ts', args: [], quickArgs: ['--limit', '20'], what: 'whole zoo on math, chat, lm: fast runner vs tfjs reference in one run (target >= 5x)' },
  { name: 'eval-zoo', file: 'eval-zoo.ts', args: [], quickArgs: ['--limit', '20'], what: 'whole zoo on math, chat, lm (target < 120 s)' },
  { name: 'cli-startup', file: 'cli-startup.ts', args: ['--runs', '15'], quickArgs: ['--runs', '5'], what: 'mergelab --help and validate from the build vs node -e 0 (target < 1 s each)' },
  { name: 'report', file: 'report.ts', args: ['--points', '200'], quickArgs: ['--points', '40', '--runs', '1'], what: '200-point report rendered in Chromium (target < 5 s)' },
];

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, 'out');

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const only = option('only')?.split(',');
  const quick = process.argv.includes('--quick');
  const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
  if (unknown.length) {
    console.error(`bench: unknown benchmark ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
    process.exit(2);
  }
  mkdirSync(outDir, { recursive: true });
  const summary: Array<{ name: string; ok: boolean; seconds: number; log: string }> = [];
  for (const b of BENCHES.filter((x) => !only || only.includes(x.name))) {
    console.log(`\n=== ${b.name}: ${b.what}`);
    const t0 = performance.now();
    const run = execa('npx', ['tsx', path.join(here, b.file), ...(quick ? b.quickArgs : b.args)], { all: true, reject: false });
    run.all?.pipe(process.stdout);
    const r = await run;
    const log = path.join(outDir, `${b.name}.log`);
    writeFileSync(log, r.all ?? '');
    summary.push({ name: b.name, ok: r.exitCode === 0, seconds: (performance.now() - t0) / 1000, log });
  }
  console.log('\n=== summary');
  for (const s of summary) console.log(`${s.ok ? 'ok    ' : 'FAILED'} ${s.name.padEnd(14)} ${s.seconds.toFixed(1).padStart(7)} s  ${path.relative(process.cwd(), s.log)}`);
  if (summary.some((s) => !s.ok)) process.exit(1);
}

await main();
