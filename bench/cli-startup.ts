/**
 * Command-line start-up: `mergelab --help` and `mergelab validate` on a small recipe (TIES of the
 * committed zoo's fine-tunes, headers only), as users run them (`node bin/mergelab.js`, the build
 * in dist/), beside `node -e 0` (Node's own start) and the TypeScript sources run through tsx (how
 * the CLI started before it was built). The commands are interleaved round by round so the other
 * jobs on this machine weigh on all of them alike; the figures are medians of wall time and
 * ratios to `node -e 0` in the same run. The target: each under 1 s.
 *   npx tsx bench/cli-startup.ts [--runs 15]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../scripts/build.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--runs');
const runs = i >= 0 ? Number(process.argv[i + 1]) : 15;
const zoo = path.join(ROOT, 'data', 'zoo');
const recipe = path.join(ROOT, 'examples', 'recipes', 'ties-math-chat.yaml');
const modelDirs = ['--model-dir', `mistralai/Mistral-7B-v0.1=${zoo}/base`, '--model-dir', `WizardLM/WizardMath-7B-V1.1=${zoo}/math`, '--model-dir', `Intel/neural-chat-7b-v3-3=${zoo}/chat`];
const bin = path.join(ROOT, 'bin', 'mergelab.js');
const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const main = path.join(ROOT, 'src', 'cli', 'main.ts');

const commands: Array<{ name: string; file: string; args: string[] }> = [
  { name: 'node -e 0', file: process.execPath, args: ['-e', '0'] },
  { name: 'mergelab --help', file: process.execPath, args: [bin, '--help'] },
  { name: 'mergelab validate ties-math-chat.yaml', file: process.execPath, args: [bin, 'validate', recipe, ...modelDirs] },
  { name: 'tsx src/cli/main.ts --help (unbuilt)', file: tsx, args: [main, '--help'] },
  { name: 'tsx src/cli/main.ts validate (unbuilt)', file: tsx, args: [main, 'validate', recipe, ...modelDirs] },
];

await build(); // measured: start-up from a fresh build, not the rebuild of a stale one
const times = new Map(commands.map((c) => [c.name, [] as number[]]));
for (let r = 0; r < runs + 1; r++) {
  for (const c of commands) {
    const t0 = performance.now();
    execFileSync(c.file, c.args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // The first round warms the file cache and is not counted.
    if (r > 0) times.get(c.name)!.push(performance.now() - t0);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(times.get('node -e 0')!);
console.log(`cli start-up, median of ${runs} interleaved runs (ms; ratio to node -e 0 in this run):`);
for (const c of commands) {
  const m = median(times.get(c.name)!);
  const target = c.name.startsWith('mergelab') ? (m < 1000 ? '  < 1 s: ok' : '  >= 1 s: MISSES the 1 s target') : '';
  console.log(`  ${c.name.padEnd(42)} ${m.toFixed(0).padStart(6)} ms  x${(m / base).toFixed(1).padStart(5)}${target}`);
}
