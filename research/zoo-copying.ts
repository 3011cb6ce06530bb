/**
 * Can the zoo's base copy a word from its context? The chat fine-tune fails exactly the
 * instructions that need a second word copied from the prompt, so this measures copying on bases:
 *
 * 1. Requests told in the corpus's own prose ("Ann asked Tom for the word cat, with dog as the last
 *    word. Tom wrote:"), greedy, per condition; and the same plain request about a made-up word.
 * 2. Made-up words repeated in the copy documents' frames ("The new word was blorf. Sam said it
 *    again:"), greedy: exact copies of the whole word.
 * 3. Teacher-forced: the geometric-mean probability of a repeated made-up word's 2nd..5th letters
 *    (the first letter can come from where the word sits; the rest only from copying it).
 *
 * With --train it trains the bases it compares (each a plan over FULL_PLAN, deterministic):
 * continued-pretraining cycles on FULL_PLAN's base (the zoo committed until 2026-11-29; to train
 * them now, pass `--zoo` a zoo from `mergelab zoo train --plan full`, or `continuePhase` refuses)
 * with composed requests or copy documents, a fresh model on copy documents only, and with
 * --train-full the longer ones: a copy-only model at 2,400 steps, a whole base with copy documents
 * in both cycles (4,028 s on one core here) and two copy stages that keep the corpus (1,000 /
 * 1,200 steps); variants marked `chat` also get a chat fine-tune, scored with `mergelab eval`'s chat and lm suites. A variant folder already trained by the same
 * plan (training_info.json's planHash) is reused, not retrained.
 *
 *   npx tsx bench/zoo-copying.ts [--zoo data/zoo] [--train] [--train-full] [--work DIR] [--jobs 2] [--out bench/out/zoo-copying.json]
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { loadZooModel } from '../src/zoo/io.js';
import { generateGreedy, scoreText } from '../src/zoo/generate.js';
import { FULL_PLAN, continuePhase, phaseDone, phaseHash, trainPhase, type PhaseName, type ZooPlan } from '../src/zoo/train.js';
import { WORDS } from '../src/data/lexicon.js';
import { askPhrasings, drawRequest, keptCorpusMix, plainReply, withCondition, type CorpusMix, type RequestCondition } from '../src/data/pretrain.js';
import { pick, rng, type Rand } from '../src/data/split.js';
import { evaluateModel } from '../src/eval/evaluate.js';
import { writeFileAtomic } from '../src/util/atomic.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const PROBE_SEED = 12345;
const PER_KIND = 40;

// ---------------------------------------------------------------------------------------------
// Variants

/** The committed base plus one continued-pretraining cycle of `steps` at 16 x 128 on `mix`. */
function continued(steps: number, lr: number, mix: CorpusMix): ZooPlan {
  const base = FULL_PLAN.base;
  return { ...FULL_PLAN, probeEvery: 0, base: { ...base, stages: [...base.stages, { steps, batch: 16, seqLen: 128, restart: { lr, warmup: 30 }, mix }] } };
}

interface Variant {
  plan: ZooPlan;
  /** Continued from the committed base (true) or trained from the plan's initial weights. */
  fromZoo: boolean;
  chat: boolean;
  full?: boolean;
}

const st = FULL_PLAN.base.stages;
const VARIANTS: Record<string, Variant> = {
  'continued 250 steps, 35% composed requests': {
    plan: continued(250, 1e-3, { facts: 0.15, stories: 0.08, words: 0.07, prose: 0.02, reversals: 0.06, requests: 0.1, composed: 0.35, worked: 0.17 }),
    fromZoo: true,
    chat: false,
  },
  'continued 500 steps, 45% copy documents': {
    plan: continued(500, 1e-3, { facts: 0.1, stories: 0.05, words: 0.05, prose: 0.02, reversals: 0.04, requests: 0.05, composed: 0.15, copy: 0.45, worked: 0.09 }),
    fromZoo: true,
    chat: false,
  },
  'continued 400 steps at lr 2e-3, 50% copy documents': {
    plan: continued(400, 2e-3, { facts: 0.1, stories: 0.05, words: 0.05, prose: 0, reversals: 0.05, requests: 0.05, composed: 0.15, copy: 0.5, worked: 0.05 }),
    fromZoo: true,
    chat: true,
  },
  'fresh model, copy documents only, 1,200 steps': {
    plan: { ...FULL_PLAN, probeEvery: 0, base: { ...FULL_PLAN.base, warmup: 50, stages: [{ steps: 1200, batch: 16, seqLen: 128, mix: { facts: 0, stories: 0, words: 0, prose: 0, copy: 1 } }] } },
    fromZoo: false,
    chat: false,
  },
  // Twice the steps: does copying form with more compute? (--train-full only: ~50 minutes here.)
  'fresh model, copy documents only, 2,400 steps': {
    plan: { ...FULL_PLAN, probeEvery: 0, base: { ...FULL_PLAN.base, warmup: 50, stages: [{ steps: 2400, batch: 16, seqLen: 128, mix: { facts: 0, stories: 0, words: 0, prose: 0, copy: 1 } }] } },
    fromZoo: false,
    chat: false,
    full: true,
  },
  // A copy stage that keeps the corpus: long enough, at a high enough rate, for copying to form
  // (the 2,400-step model above), without the 80% copy stage's loss of the corpus.
  'continued 1,000 steps at lr 2e-3, 40% copy documents, corpus kept': {
    plan: continued(1000, 2e-3, keptCorpusMix(0.4)),
    fromZoo: true,
    chat: true,
    full: true,
  },
  'continued 1,200 steps at lr 2e-3, 25% copy documents, corpus kept': {
    // COPY_PLAN's stages on FULL_PLAN's unsplit base (COPY_PLAN itself splits its batches in two).
    plan: continued(1200, 2e-3, keptCorpusMix(0.25)),
    fromZoo: true,
    chat: true,
    full: true,
  },
  'whole base, copy documents 20% in cycle 1 and 12% in cycle 2': {
    plan: {
      ...FULL_PLAN,
      base: {
        ...FULL_PLAN.base,
        stages: [
          { ...st[0], mix: { facts: 0.38, stories: 0.2, words: 0.1, prose: 0.02, reversals: 0.1, copy: 0.2 } },
          { ...st[1], mix: { facts: 0.38, stories: 0.2, words: 0.1, prose: 0.02, reversals: 0.1, copy: 0.2 } },
          { ...st[2], mix: { facts: 0.18, stories: 0.08, words: 0.07, prose: 0.02, reversals: 0.06, requests: 0.12, composed: 0.15, copy: 0.12, worked: 0.2 } },
          { ...st[3], mix: { facts: 0.18, stories: 0.08, words: 0.07, prose: 0.02, reversals: 0.06, requests: 0.12, composed: 0.15, copy: 0.12, worked: 0.2 } },
        ],
      },
    },
    fromZoo: false,
    chat: true,
    full: true,
  },
};

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();

async function trainIfNeeded(v: Variant, dir: string, phase: PhaseName, zoo: string): Promise<void> {
  if (await phaseDone(dir, phase, phaseHash(v.plan, phase))) return;
  const opts = { out: dir, resume: true, log: () => {} };
  if (phase === 'base' && v.fromZoo) await continuePhase(v.plan, 'base', path.join(zoo, 'base'), opts);
  else await trainPhase(v.plan, phase, opts);
}

// ---------------------------------------------------------------------------------------------
// Probes

const made = (r: Rand) => Array.from({ length: 5 }, (_, i) => (i % 2 ? 'aeiou' : 'bdfgklmnprstvz')[Math.floor(r() * (i % 2 ? 5 : 14))]).join('');

type Cond = RequestCondition | 'made-up word';
const CONDS: Cond[] = ['none', 'end', 'keyword', 'capital', 'quotes', 'brackets', 'made-up word'];

/** Requests in the corpus's own phrasing (src/data/pretrain.ts requestDoc) with their replies. */
function proseRequests(): Array<{ cond: Cond; prompt: string; want: string }> {
  const r = rng(PROBE_SEED);
  const out: Array<{ cond: Cond; prompt: string; want: string }> = [];
  for (const cond of CONDS) {
    for (let i = 0; i < PER_KIND; i++) {
      const drawn = drawRequest(r);
      const d = { ...drawn, w: cond === 'made-up word' ? made(r) : drawn.w };
      const w = d.w;
      // One fixed phrasing per kind, each from the corpus's own.
      const ask = askPhrasings(d)[d.kind === 'say' ? 1 : 0];
      const c = withCondition(r, w, plainReply(d.kind, w, d.n), cond === 'made-up word' ? 'none' : cond);
      out.push({ cond, prompt: `${[ask, ...(c.ask ? [c.ask] : [])].join(', ')}. ${d.writer} wrote:`, want: c.reply });
    }
  }
  return out;
}

const COPY_FRAMES: Array<(a: string, b: string) => [string, string]> = [
  (a) => [`The new word was ${a}. Sam said it again:`, a],
  (a, b) => [`First came ${b}, then ${a}. Put together:`, `${b} ${a}`],
  (a) => [`Tom asked Ann for the word ${a}. Ann wrote:`, a],
];

async function probe(dir: string): Promise<Record<string, number>> {
  const m = await loadZooModel(dir);
  try {
    const res: Record<string, number> = {};
    const reqs = proseRequests();
    const got = await generateGreedy(m, reqs.map((x) => x.prompt), { maxNewTokens: 40 });
    for (const c of CONDS) {
      const idx = reqs.map((x, i) => (x.cond === c ? i : -1)).filter((i) => i >= 0);
      res[`prose request: ${c}`] = idx.filter((i) => got[i].split('\n')[0].trim() === reqs[i].want).length / idx.length;
    }
    const r = rng(PROBE_SEED + 1);
    const words = Array.from({ length: PER_KIND }, () => [made(r), pick(r, WORDS)] as const);
    for (const [fi, frame] of COPY_FRAMES.entries()) {
      const items = words.map(([a, b]) => frame(a, b));
      const out = await generateGreedy(m, items.map(([p]) => p), { maxNewTokens: 24 });
      res[`greedy copy, frame ${fi + 1}`] = items.filter(([, want], i) => out[i].trim().replace(/[.\n].*$/s, '') === want).length / items.length;
      const full = await scoreText(m, items.map(([p], i) => `${p} ${words[i][0]}`));
      const first = await scoreText(m, items.map(([p], i) => `${p} ${words[i][0][0]}`));
      const perLetter = full.reduce((s, x, i) => s + (x.nll - first[i].nll) / 4, 0) / items.length;
      res[`p(letter), frame ${fi + 1}`] = Math.exp(-perLetter);
    }
    return res;
  } finally {
    m.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

const zoo = path.resolve(arg('zoo') ?? 'data/zoo');
const work = path.resolve(arg('work') ?? 'bench/out/zoo-copying');
const jobs = Number(arg('jobs') ?? 2);

/** Child mode: train one variant (base, then chat if it has one). */
if (arg('variant')) {
  const v = VARIANTS[arg('variant')!];
  const dir = path.join(work, slug(arg('variant')!));
  await fs.mkdir(dir, { recursive: true });
  await trainIfNeeded(v, dir, 'base', zoo);
  if (v.chat) await trainIfNeeded(v, dir, 'chat', zoo);
  process.exit(0);
}

const t0 = performance.now();
const line = (s: string) => process.stdout.write(s + '\n');
const fmt = (s: Record<string, number>) => Object.entries(s).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');
const result: Record<string, unknown> = { zoo, probeSeed: PROBE_SEED, perKind: PER_KIND, date: new Date().toISOString() };
const models: Record<string, Record<string, unknown>> = {};
// Models from another --zoo (a variant plan's zoo) are named by their folder, not as the committed ones.
const zooLabel = zoo === path.resolve('data/zoo') ? 'committed' : `zoo ${zoo}`;
for (const m of ['base', 'chat']) {
  const label = `${zooLabel} ${m}`;
  models[label] = await probe(path.join(zoo, m));
  line(`${label}: ${fmt(models[label] as Record<string, number>)}`);
}

const toTrain = Object.keys(VARIANTS).filter((n) => process.argv.includes('--train-full') || (process.argv.includes('--train') && !VARIANTS[n].full));
const self = new URL(import.meta.url).pathname;
const pool = pLimit(jobs);
await Promise.all(
  toTrain.map((n) =>
    pool(async () => {
      const t = performance.now();
      await execa('npx', ['tsx', self, '--variant', n, '--work', work, '--zoo', zoo], { stdio: 'inherit' });
      line(`variant "${n}" ready in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    }),
  ),
);
for (const n of Object.keys(VARIANTS)) {
  const v = VARIANTS[n];
  const dir = path.join(work, slug(n));
  const hash = phaseHash(v.plan, 'base');
  if (!(await phaseDone(dir, 'base', hash))) {
    line(`variant "${n}": not trained in ${dir} (run with --train${v.full ? '-full' : ''})`);
    continue;
  }
  const row: Record<string, unknown> = { planHash: hash, ...(await probe(path.join(dir, 'base'))) };
  const lm = await evaluateModel(path.join(dir, 'base'), { suites: ['lm'], samples: 0 });
  row['base perplexity'] = lm.metrics.lm.perplexity;
  if (v.chat && (await phaseDone(dir, 'chat', phaseHash(v.plan, 'chat')))) {
    const e = await evaluateModel(path.join(dir, 'chat'), { suites: ['chat', 'lm'], samples: 0 });
    row['chat fine-tune: prompt strict'] = e.metrics.chat.prompt_level_strict;
    row['chat fine-tune: inst strict'] = e.metrics.chat.inst_level_strict;
    row['chat fine-tune: perplexity'] = e.metrics.lm.perplexity;
  }
  models[n] = row;
  line(`variant "${n}": ${Object.entries(row).map(([k, x]) => `${k} ${typeof x === 'number' ? x.toFixed(3) : x}`).join(', ')}`);
}
result.models = models;
result.wallSec = Math.round((performance.now() - t0) / 1000);
const out = path.resolve(arg('out') ?? 'bench/out/zoo-copying.json');
await writeFileAtomic(out, JSON.stringify(result, null, 2) + '\n');
line(`wrote ${out} (${result.wallSec} s)`);
