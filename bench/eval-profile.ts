/**
 * Where `mergelab eval` spends its time: runs it under V8's CPU profiler (every thread writes its
 * own profile; the fast runner runs on one thread here so that its kernels are in the main
 * thread's profile) with each runner and prints a markdown table of self time by category, the summary
 * kept in bench/eval-profile.md.
 *   npx tsx bench/eval-profile.ts [--model data/zoo/math] [--limit 40] [--runners tfjs,fast]
 */
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argOr as arg } from './args.js';

interface Frame { functionName: string; url: string }
interface Node { id: number; callFrame: Frame; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

/** The category of a sample, from its stack (innermost first). */
function categorize(stack: Frame[]): string {
  const top = stack[0];
  if (top.functionName === '(idle)') return 'idle (waiting: other threads, I/O)';
  if (top.functionName === '(garbage collector)') return 'garbage collection';
  const fn = (f: Frame) => f.functionName;
  const inFile = (re: RegExp) => stack.find((f) => re.test(f.url));
  // The fast runner's kernels are named in kernels.wat; its JS parts are in runner-typed/.
  const own = inFile(/runner-typed\//);
  if (own) return /^wasm:/.test(top.url) ? `fast: wasm kernel ${fn(top).replace('$', '')}` : `fast: JS ${fn(own)} (${path.basename(own.url)})`;
  const kernel = stack.find((f) => /tf-backend-wasm/.test(f.url) && fn(f) && !/^(kernelFunc|ccall|runKernel|makeOutput|BackendWasm\.\w+)$/.test(fn(f)) && !/^Module\./.test(fn(f)));
  const zoo = inFile(/zoo\/(model|generate)\.ts/);
  if (/wasm/.test(top.url) || (kernel && stack.indexOf(kernel) < 4)) {
    const k = kernel ? fn(kernel) : zoo && fn(zoo) === '' ? 'batchMatMul' : '?';
    const caller = zoo ? (fn(zoo) || 'mm') : '?';
    return `tfjs: wasm kernel ${k === '' ? 'batchMatMul' : k} <- ${caller}`;
  }
  if (stack.some((f) => /tf-core/.test(f.url) || /tf-backend-wasm/.test(f.url))) return 'tfjs: op dispatch, tensor bookkeeping (JS)';
  if (zoo) return `tfjs: JS in ${path.basename(zoo.url)} (${fn(zoo) || 'anonymous'})`;
  if (stack.some((f) => /node:internal\/modules|esm|cjs|tsx|esbuild/.test(f.url + f.functionName))) return 'module loading (tsx, imports)';
  if (stack.some((f) => /\/src\/eval\//.test(f.url))) return 'evaluator (templates, scoring, tokenizer)';
  if (stack.some((f) => /\/src\/(checkpoint|zoo\/io)/.test(f.url))) return 'checkpoint loading';
  return 'other';
}

function summarize(dir: string): Map<string, number> {
  const total = new Map<string, number>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const cache = new Map<number, string>();
    p.samples.forEach((id, i) => {
      let cat = cache.get(id);
      if (!cat) {
        const stack: Frame[] = [];
        for (let n: Node | undefined = byId.get(id); n; n = byId.get(parent.get(n.id) ?? -1)) stack.push(n.callFrame);
        cat = categorize(stack);
        cache.set(id, cat);
      }
      total.set(cat, (total.get(cat) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
    });
  }
  return total;
}

const model = arg('model', 'data/zoo/math');
const limit = arg('limit', '40');
const runners = arg('runners', 'tfjs,fast').split(',');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const runner of runners) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eval-prof-'));
  try {
    const t0 = performance.now();
    const r = await execa('node', ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', path.join(repo, 'src/cli/main.ts'), 'eval', model, '--suite', 'math,chat,lm', '--limit', limit, '--runner', runner, ...(runner === 'fast' ? ['--threads', '1'] : [])], { cwd: repo });
    const wall = (performance.now() - t0) / 1000;
    const times = summarize(dir);
    const sum = [...times.values()].reduce((a, b) => a + b, 0);
    const timing = /time: (.*)/.exec(r.stdout + r.stderr)?.[1] ?? 'no timing line';
    process.stdout.write(`\n### --runner ${runner}: ${wall.toFixed(1)} s wall (${timing}); ${(sum / 1000).toFixed(1)} s of samples over all threads\n\n| category | ms | share |\n|---|---:|---:|\n`);
    for (const [k, v] of [...times].sort((a, b) => b[1] - a[1]).filter(([, v]) => v / sum >= 0.005)) process.stdout.write(`| ${k} | ${v.toFixed(0)} | ${((100 * v) / sum).toFixed(1)}% |\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
