/**
 * Quick self-check of zoo models while training (the real numbers come from `mergelab eval`):
 * math strict exact match (`#### N`), chat prompt-level strict accuracy, lm perplexity on held-out
 * corpus text. Usage: npx tsx bench/zoo-quick-eval.ts DIR [DIR...] [--n 100]
 */
import { promises as fs } from 'node:fs';
import { loadZooModel } from '../src/zoo/io.js';
import { generateGreedy, scoreText } from '../src/zoo/generate.js';
import { mathExample, chatExample } from '../src/zoo/train.js';
import { checkAll } from '../src/ifeval/registry.js';
import { pretrainDocuments } from '../src/data/pretrain.js';
import { mathProblems } from '../src/data/math.js';
import { chatPrompts } from '../src/data/chat.js';

const args = process.argv.slice(2);
const ni = args.indexOf('--n');
const N = ni >= 0 ? Number(args[ni + 1]) : 100;
const dirs = args.filter((a, i) => !a.startsWith('--') && !['--n', '--suites'].includes(args[i - 1]));
const read = async (f: string) => (await fs.readFile(f, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
// --generated draws the eval split from the generators (seed 2, as mergelab data build) instead of the committed files.
const gen = args.includes('--generated');
const si = args.indexOf('--suites');
const suites = si >= 0 ? args[si + 1].split(',') : ['math', 'chat', 'lm'];
const math = gen ? mathProblems('eval', N, 2) : ((await read('evals/math.jsonl')).slice(0, N) as Array<{ question: string; target: number }>);
const chat = gen ? chatPrompts('eval', N, 2) : ((await read('evals/chat.jsonl')).slice(0, N) as Array<{ prompt: string; instruction_id_list: string[]; kwargs: unknown[] }>);
const lm = pretrainDocuments('heldout', N, 1);
for (const dir of dirs) {
  const m = await loadZooModel(dir);
  const t0 = Date.now();
  const mo = suites.includes('math') ? await generateGreedy(m, math.map((p) => mathExample(p.question, '').prompt), { maxNewTokens: 110, batchSize: 50 }) : [];
  const mathAcc = suites.includes('math') ? mo.filter((o, i) => (/#### (-?\d+)/.exec(o)?.[1] ?? '') === String(math[i].target)).length / math.length : null;
  const co = suites.includes('chat') ? await generateGreedy(m, chat.map((p) => chatExample(p.prompt, '').prompt), { maxNewTokens: 48, batchSize: 50 }) : [];
  const chatAcc = suites.includes('chat') ? co.filter((o, i) => checkAll(o, chat[i].instruction_id_list, chat[i].kwargs).every(Boolean)).length / chat.length : null;
  const sc = suites.includes('lm') ? await scoreText(m, lm, { batchSize: 50 }) : [];
  const ppl = Math.exp(sc.reduce((s, x) => s + x.nll, 0) / Math.max(1, sc.reduce((s, x) => s + x.tokens, 0)));
  console.log(JSON.stringify({ dir, n: N, mathStrict: mathAcc, chatPromptStrict: chatAcc, lmPpl: +ppl.toFixed(4), sec: Math.round((Date.now() - t0) / 1000) }));
  if (args.includes('--show')) {
    for (let i = 0; i < Math.min(4, mo.length); i++) console.log('MATH', JSON.stringify(math[i].question), '=>', JSON.stringify(mo[i]));
    for (let i = 0; i < Math.min(8, co.length); i++) console.log('CHAT', JSON.stringify(chat[i].prompt), '=>', JSON.stringify(co[i]));
  }
  m.dispose();
}
