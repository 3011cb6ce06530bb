import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML, { LineCounter, isMap, isScalar, type Document } from 'yaml';
import { z } from 'zod';
import { UserError, formatPos, problemsError, type Problem, type SourcePos } from '../util/errors.js';
import { nearest } from '../util/suggest.js';
import { knownKeysAt } from '../util/zodKeys.js';
import { ReportConfigSchema, camelizeKeys, type ReportConfig } from '../report/options.js';
import { ExecutorSchema, resolveExecutor, type ExecutorConfig } from './executorConfig.js';
import { EvalBackendSchema, MaxModelsOnDiskSchema, ResourcesSchema, type EvalBackendConfig, type Resources } from '../eval/backends/config.js';

/**
 * Experiment files (`experiments/*.yaml`): named models, recipe templates in mergekit syntax with
 * `${name}` placeholders, sweep axes, seeds, evaluation settings, baselines and report options.
 *
 * Every problem is reported as `file:line:col: field PATH: what was expected`, and all problems of
 * a file are reported at once. `readExperiment` returns the experiment together with the problems
 * that still leave it plannable (an unknown placeholder, a missing model folder), so that a sweep's
 * recipes are checked in the same pass.
 */

export type AxisValue = number | string | boolean | null;

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME_EXPECTED = 'expected a name of letters, digits and _ (not starting with a digit)';
/** Placeholders the planner fills itself; an axis or model may not take these names. */
const RESERVED = new Set(['seed']);

const AxisValueSchema = z.union([z.number(), z.string(), z.boolean(), z.null()], {
  error: 'expected a number, a string, true/false or null (lists and mappings cannot be axis values)',
});
const AxisValues = z.array(AxisValueSchema, { error: 'expected a list of values' }).min(1, { error: 'an axis needs at least one value' });
const AxisMap = z.record(z.string(), AxisValues, { error: 'expected a mapping {axis name: [values]}' });

const SweepSchema = z.strictObject(
  {
    /** Every combination of these axes (grid product). */
    grid: AxisMap.optional(),
    /** Each entry is one axis group whose lists are walked in step (all the same length). */
    zip: z.array(AxisMap, { error: 'expected a list of {axis: [values]} groups' }).optional(),
  },
  { error: 'expected a mapping with `grid` and/or `zip`' },
);

const Seeds = z
  .array(z.number({ error: 'a seed is a whole number' }).int({ error: 'a seed is a whole number' }).nonnegative({ error: 'a seed is >= 0' }).max(2 ** 32 - 1), {
    error: 'expected a list of whole numbers',
  })
  .min(1, { error: 'seeds needs at least one value' });

const VariantSchema = z.strictObject(
  {
    description: z.string().optional(),
    recipe: z.string({ error: 'expected the recipe as a YAML block string (`recipe: |` followed by mergekit YAML, stages separated by `---`)' }).min(1),
    sweep: SweepSchema.optional(),
    /** Overrides the experiment's seeds for this variant. */
    seeds: Seeds.optional(),
    /** Overrides the experiment's allow_crimes for this variant. */
    allow_crimes: z.boolean({ error: 'expected true or false' }).optional(),
  },
  { error: 'expected a mapping with recipe, and optionally sweep, seeds, description, allow_crimes' },
);

const EvalSchema = z.strictObject(
  {
    suites: z.array(z.string().min(1), { error: 'expected a list of suite names' }).min(1, { error: 'eval.suites needs at least one suite' }),
    /** Items per suite (the first N of each suite); null or absent = all. */
    limit: z.number().int().positive({ error: 'limit is a positive whole number' }).nullish(),
    batch_size: z.number().int().positive({ error: 'batch_size is a positive whole number' }).optional(),
    /** Generated outputs kept per suite in each record. */
    samples: z.number().int().nonnegative({ error: 'samples is a whole number >= 0' }).optional(),
    /** Who scores each model: builtin (default), command, openai or lm-eval (src/eval/backends/config.ts). */
    backend: EvalBackendSchema,
  },
  { error: 'expected a mapping with suites, and optionally limit, batch_size, samples, backend' },
);

const ExperimentSchema = z
  .strictObject(
    {
      name: z.string({ error: 'expected the experiment name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a name of letters, digits, ., _ and - (it names the folder reports/NAME)' }),
      description: z.string().optional(),
      models: z.record(z.string(), z.string({ error: 'expected `zoo:NAME` or a path to a Hugging Face model folder' }).min(1), {
        error: 'expected a mapping {name: zoo:NAME or a folder}',
      }),
      recipe: z.string({ error: 'expected the recipe as a YAML block string (`recipe: |`)' }).min(1).optional(),
      sweep: SweepSchema.optional(),
      variants: z.record(z.string(), VariantSchema, { error: 'expected a mapping {variant name: {recipe, sweep}}' }).optional(),
      seeds: Seeds.optional(),
      eval: EvalSchema,
      baselines: z.array(z.string(), { error: 'expected a list of model names' }).optional(),
      /** Merge models whose tensors differ in shape (mergekit's --allow-crimes); marked on each point's record. */
      allow_crimes: z.boolean({ error: 'expected true or false' }).optional(),
      // The report options' own schema (src/report/options.ts); snake_case keys are accepted like the rest of the file.
      report: z.unknown().transform(camelizeKeys).pipe(ReportConfigSchema).optional(),
      executor: ExecutorSchema.optional(),
      /** GPUs handed to concurrent evaluations. */
      resources: ResourcesSchema,
      /** Merged checkpoints on disk at once (a merge waits until one is evaluated and deleted). */
      max_models_on_disk: MaxModelsOnDiskSchema,
    },
    { error: 'an experiment file must be a YAML mapping' },
  )
  .superRefine((e, ctx) => {
    if (e.recipe === undefined && e.variants === undefined) ctx.addIssue({ code: 'custom', path: ['variants'], message: 'give either `recipe` (with `sweep`) or `variants`' });
    if (e.recipe !== undefined && e.variants !== undefined) ctx.addIssue({ code: 'custom', path: ['recipe'], message: '`recipe` and `variants` cannot both be given: put the recipe in a variant' });
    if (e.sweep !== undefined && e.recipe === undefined) ctx.addIssue({ code: 'custom', path: ['sweep'], message: 'a top-level `sweep` belongs to a top-level `recipe`; with variants, give each variant its own sweep' });
  });
type RawExperiment = z.output<typeof ExperimentSchema>;

/** One axis group: a single grid axis, or several zipped axes walked in step. */
export interface AxisGroup {
  names: string[];
  /** rows[i][j] = value of names[j] at step i. */
  rows: AxisValue[][];
  /** at[i][j] = where rows[i][j] is written in the file (a problem that value causes points there). */
  at: SourcePos[][];
}

/** A `${name}` in a template: its place in the template text and in the file. */
export interface Placeholder {
  name: string;
  /** Offset of the `$` in the template text, and the length of `${...}`. */
  offset: number;
  length: number;
  at: SourcePos;
  /** Neither a model nor an axis (reported with the experiment's problems; its points are not planned further there). */
  unknown: boolean;
}

/** A recipe template and where its text sits in the experiment file. */
export interface Template {
  text: string;
  /** Maps line and col of the template text (1-based) to the file. */
  posAt(line: number, col: number): SourcePos;
  /** Placeholders in order of appearance. */
  placeholders: Placeholder[];
  field: string;
}

export interface Variant {
  name: string;
  description?: string;
  template: Template;
  groups: AxisGroup[];
  seeds: number[];
  field: string;
  /** Models whose tensors differ in shape are merged (with a warning, marked on the records), not refused. */
  allowCrimes: boolean;
}

export interface ModelSpec {
  name: string;
  /** As written (`zoo:math`, `../models/x`). */
  source: string;
  /** Absolute folder. */
  dir: string;
}

export interface EvalConfig {
  suites: string[];
  limit: number | null;
  batchSize: number;
  samples: number;
  /** Who scores each model (`eval.backend`; `{type: 'builtin'}` unless the file says otherwise). */
  backend: EvalBackendConfig;
}

export interface Experiment {
  file: string;
  name: string;
  description?: string;
  models: Record<string, ModelSpec>;
  variants: Variant[];
  eval: EvalConfig;
  /** Extra models evaluated as references besides the bases and parents of the recipes. */
  baselines: string[];
  report: ReportConfig;
  /** Which executor runs the sweep and the Slurm job settings (src/sweep/executorConfig.ts). */
  executor: ExecutorConfig;
  /** GPUs handed to concurrent evaluations (`resources:`). */
  resources: Resources;
  /** Merged checkpoints on disk at once; null: no bound. */
  maxModelsOnDisk: number | null;
  /** Where a field is in the file, for problems found after loading (planning, suites). */
  pos(field: Array<string | number>): SourcePos;
  /** `file:line:col` of `pos(field)`. */
  where(field: Array<string | number>): string;
}

/** An experiment as read, with the problems that did not stop it from being planned. */
export interface ExperimentDraft {
  experiment: Experiment;
  problems: Problem[];
  /** Models whose folder is missing (each already a problem): recipes naming them are checked without their headers. */
  unavailableModels: Set<string>;
}

export const DEFAULT_BATCH_SIZE = 32;
export const DEFAULT_SAMPLES = 3;

/** The repository's `data/zoo`, where `zoo:NAME` points unless a zoo folder is given. */
export function defaultZooDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../data/zoo');
}

export interface LoadExperimentOptions {
  /** Folder `zoo:NAME` resolves in (default: the repository's data/zoo). */
  zooDir?: string;
  /** Check that model folders exist (default true; dry runs of a file on another machine may skip it). */
  checkModels?: boolean;
}

type NodeWithRange = { range?: [number, number, number] };

class Locator {
  constructor(
    readonly file: string,
    readonly doc: Document.Parsed,
    readonly lines: LineCounter,
    readonly text: string,
  ) {}

  node(p: ReadonlyArray<string | number>): NodeWithRange | undefined {
    for (let n = p.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : (this.doc.getIn(p.slice(0, n), true) as NodeWithRange | undefined);
      if (node && typeof node === 'object' && node.range) return node;
    }
    return undefined;
  }

  /** Position of the value at `p` (or of its nearest ancestor that exists). */
  pos(p: ReadonlyArray<string | number>): SourcePos {
    const n = this.node(p);
    if (!n?.range) return { file: this.file };
    return this.at(n.range[0]);
  }

  where(p: ReadonlyArray<string | number>): string {
    return formatPos(this.pos(p));
  }

  /** Position of the KEY of the last path element (an unknown field is best shown at its name). */
  posKey(p: ReadonlyArray<string | number>): SourcePos {
    const parent = p.length > 1 ? this.doc.getIn(p.slice(0, -1), true) : this.doc.contents;
    if (isMap(parent)) {
      const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === p[p.length - 1]);
      const r = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (r) return this.at(r[0]);
    }
    return this.pos(p);
  }

  at(offset: number): SourcePos {
    return { file: this.file, ...this.lines.linePos(offset) };
  }
}

export function formatPath(p: ReadonlyArray<string | number>): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out === '' ? k : `.${k}`;
  return out || '(document)';
}

function problemAt(loc: Locator, p: ReadonlyArray<string | number>, what: string, suggestion?: string): Problem {
  return { ...loc.pos(p), field: formatPath(p), message: what, ...(suggestion !== undefined ? { suggestion } : {}) };
}

/** A recipe string's placeholders and a map from its own line:col to the experiment file's. */
function makeTemplate(loc: Locator, p: Array<string | number>, text: string, isKnown: (name: string) => boolean): Template {
  const node = loc.doc.getIn(p, true);
  const field = formatPath(p);
  let posAt: Template['posAt'] = () => loc.pos(p);
  // Where each placeholder is in the file: in the source of the scalar when it can be read from
  // it (a block scalar holds the template's text verbatim, indented), else at the field.
  let srcPos: (i: number) => SourcePos = () => loc.pos(p);
  if (isScalar(node) && node.range) {
    const [start, valueEnd] = node.range;
    const src = loc.text.slice(start, valueEnd);
    const block = src.startsWith('|') || src.startsWith('>');
    if (block) {
      // Content starts on the line after the `|` header; its indentation is that of the first content line.
      const headerLine = loc.lines.linePos(start).line;
      const firstNl = src.indexOf('\n');
      const rest = firstNl >= 0 ? src.slice(firstNl + 1) : '';
      const m = /^(?:[ \t]*\n)*( *)/.exec(rest);
      const indent = m ? m[1].length : 0;
      posAt = (line, col) => ({ file: loc.file, line: headerLine + line, col: col + indent });
    } else {
      const { line: l0, col: c0 } = loc.lines.linePos(start);
      const quote = src.startsWith('"') || src.startsWith("'") ? 1 : 0;
      posAt = (line, col) => (line === 1 ? { file: loc.file, line: l0, col: c0 + quote + col - 1 } : { file: loc.file, line: l0 + line - 1, col });
    }
    const inSrc = [...src.matchAll(/\$\{([^}\n]*)\}/g)].map((m) => loc.at(start + (m.index ?? 0)));
    srcPos = (i) => inSrc[i] ?? loc.pos(p);
  }
  const placeholders: Placeholder[] = [...text.matchAll(/\$\{([^}\n]*)\}/g)].map((m, i) => {
    const name = m[1].trim();
    return { name, offset: m.index ?? 0, length: m[0].length, at: srcPos(i), unknown: !isKnown(name) };
  });
  return { text, posAt, placeholders, field };
}

function resolveModelDir(source: string, fileDir: string, zooDir: string): string {
  if (source.startsWith('zoo:')) return path.resolve(zooDir, source.slice(4)); // a relative --zoo is relative to where the command runs
  return path.resolve(fileDir, source);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Parse and validate experiment text; throws UserErrors listing every problem with file:line:col. */
export async function parseExperiment(text: string, file: string, opts: LoadExperimentOptions = {}): Promise<Experiment> {
  const draft = await parseExperimentDraft(text, file, opts);
  if (draft.problems.length) throw problemsError(draft.problems, file);
  return draft.experiment;
}

/**
 * Parse experiment text, keeping the problems that leave the experiment plannable; throws (every
 * problem at once) only when it cannot be read at all: YAML syntax, or a field of the wrong shape.
 */
export async function parseExperimentDraft(text: string, file: string, opts: LoadExperimentOptions = {}): Promise<ExperimentDraft> {
  const lines = new LineCounter();
  const docs = YAML.parseAllDocuments(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const all = Array.isArray(docs) ? docs : [docs];
  const problems: Problem[] = [];
  for (const d of all) {
    for (const e of d.errors) {
      const pos = e.linePos?.[0];
      problems.push({ file, ...(pos ? { line: pos.line, col: pos.col } : {}), message: `YAML syntax error: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` });
    }
  }
  if (problems.length) throw problemsError(problems, file);
  const nonEmpty = all.filter((d) => d.contents !== null && d.contents !== undefined);
  if (nonEmpty.length !== 1) {
    throw new UserError(
      {
        file,
        message:
          nonEmpty.length === 0
            ? 'the experiment file is empty (expected a mapping with name, models, recipe or variants, eval)'
            : 'expected one YAML document; multi-stage recipes go inside `recipe: |` blocks, not at the top level',
      },
      { file },
    );
  }
  const doc = nonEmpty[0];
  const loc = new Locator(file, doc, lines, text);
  const parsed = ExperimentSchema.safeParse(doc.toJS({ maxAliasCount: 1000 }));
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const p = i.path.filter((k): k is string | number => typeof k !== 'symbol');
      if (i.code === 'unrecognized_keys') {
        const known = knownKeysAt(ExperimentSchema, p);
        for (const k of i.keys) {
          const top = p.length === 0 ? ' (experiment fields: name, description, models, recipe, sweep, variants, seeds, eval, baselines, report, executor, resources, max_models_on_disk)' : '';
          const suggestion = nearest(k, known);
          problems.push({ ...loc.posKey([...p, k]), field: formatPath([...p, k]), message: `unknown field '${k}'${top}`, ...(suggestion ? { suggestion } : {}) });
        }
      } else {
        problems.push(problemAt(loc, p, i.message));
      }
    }
    throw problemsError(problems, file);
  }
  return validate(parsed.data, loc, path.dirname(path.resolve(file)), opts);
}

async function validate(raw: RawExperiment, loc: Locator, fileDir: string, opts: LoadExperimentOptions): Promise<ExperimentDraft> {
  const problems: Problem[] = [];
  const unavailableModels = new Set<string>();
  const zooDir = opts.zooDir ?? defaultZooDir();
  const models: Record<string, ModelSpec> = {};
  for (const [name, source] of Object.entries(raw.models)) {
    const p = ['models', name];
    if (!NAME_RE.test(name) || RESERVED.has(name)) {
      problems.push(problemAt(loc, p, `model name '${name}': ${RESERVED.has(name) ? `'${name}' is reserved` : NAME_EXPECTED}`));
      continue;
    }
    const dir = resolveModelDir(source, fileDir, zooDir);
    if (opts.checkModels !== false && !(await isDir(dir))) {
      unavailableModels.add(name);
      problems.push(
        problemAt(
          loc,
          p,
          source.startsWith('zoo:')
            ? `zoo model '${source.slice(4)}' not found at ${dir} (train the zoo with \`mergelab zoo train\`, or pass --zoo DIR)`
            : `model folder ${dir} does not exist (expected \`zoo:NAME\` or a Hugging Face folder; relative paths are from ${fileDir})`,
        ),
      );
    }
    models[name] = { name, source, dir };
  }
  if (Object.keys(raw.models).length === 0) problems.push(problemAt(loc, ['models'], 'expected at least one model'));

  const topSeeds = raw.seeds ?? [0];
  const variants: Variant[] = [];
  const rawVariants: Array<[string, { recipe: string; sweep?: z.output<typeof SweepSchema>; seeds?: number[]; description?: string; allow_crimes?: boolean }, Array<string | number>]> = raw.variants
    ? Object.entries(raw.variants).map(([n, v]) => [n, v, ['variants', n]])
    : [[raw.name.replace(/[^A-Za-z0-9_]/g, '_'), { recipe: raw.recipe!, sweep: raw.sweep, seeds: undefined }, []]];
  for (const [vname, v, vp] of rawVariants) {
    if (raw.variants && !NAME_RE.test(vname)) problems.push(problemAt(loc, vp, `variant name '${vname}': ${NAME_EXPECTED}`));
    const groups: AxisGroup[] = [];
    const axisNames = new Map<string, SourcePos>();
    const addAxis = (name: string, p: Array<string | number>) => {
      if (!NAME_RE.test(name)) problems.push(problemAt(loc, p, `axis name '${name}': ${NAME_EXPECTED}`));
      else if (RESERVED.has(name)) problems.push(problemAt(loc, p, `'${name}' cannot be an axis: seeds are swept with the \`seeds\` field`));
      else if (name in raw.models) problems.push(problemAt(loc, p, `axis '${name}' has the name of a model; ${'${' + name + '}'} would be ambiguous`));
      else if (axisNames.has(name)) problems.push(problemAt(loc, p, `axis '${name}' is already defined at ${formatPos(axisNames.get(name)!)}`));
      axisNames.set(name, loc.posKey(p));
    };
    const sweepPath = [...vp, 'sweep'];
    for (const [name, values] of Object.entries(v.sweep?.grid ?? {})) {
      addAxis(name, [...sweepPath, 'grid', name]);
      const dup = values.findIndex((x, i) => values.findIndex((y) => y === x) !== i);
      if (dup >= 0) problems.push(problemAt(loc, [...sweepPath, 'grid', name, dup], `value ${JSON.stringify(values[dup])} appears twice in axis '${name}'`));
      groups.push({ names: [name], rows: values.map((x) => [x]), at: values.map((_, i) => [loc.pos([...sweepPath, 'grid', name, i])]) });
    }
    (v.sweep?.zip ?? []).forEach((group, gi) => {
      const entries = Object.entries(group);
      const gp = [...sweepPath, 'zip', gi];
      if (entries.length === 0) {
        problems.push(problemAt(loc, gp, 'a zip group needs at least one axis'));
        return;
      }
      const len = entries[0][1].length;
      for (const [name, values] of entries) {
        addAxis(name, [...gp, name]);
        if (values.length !== len) problems.push(problemAt(loc, [...gp, name], `zipped axis '${name}' has ${values.length} values but '${entries[0][0]}' has ${len}; zipped axes are walked in step and need the same length`));
      }
      if (entries.every(([, vals]) => vals.length === len)) {
        groups.push({
          names: entries.map(([n]) => n),
          rows: Array.from({ length: len }, (_, i) => entries.map(([, vals]) => vals[i])),
          at: Array.from({ length: len }, (_, i) => entries.map(([n]) => loc.pos([...gp, n, i]))),
        });
      }
    });
    const template = makeTemplate(loc, [...vp, 'recipe'], v.recipe, (n) => n in raw.models || axisNames.has(n));
    const used = new Set<string>();
    for (const ph of template.placeholders) {
      used.add(ph.name);
      if (!ph.unknown) continue;
      const known = [...Object.keys(raw.models).map((m) => `${m} (model)`), ...[...axisNames.keys()].map((a) => `${a} (axis)`)];
      problems.push({
        ...ph.at,
        field: template.field,
        message:
          `unknown placeholder \${${ph.name}}` +
          (ph.name === 'seed' ? ' (seeds are not placeholders: the seed is given to every random stage; sweep it with `seeds`)' : `; known names: ${known.join(', ') || 'none'}`),
        ...(ph.name !== 'seed' && nearest(ph.name, [...Object.keys(raw.models), ...axisNames.keys()]) ? { suggestion: nearest(ph.name, [...Object.keys(raw.models), ...axisNames.keys()]) } : {}),
      });
    }
    for (const [name, at] of axisNames) {
      // A typo'd placeholder leaves its axis unused: that is the same mistake, said once.
      const typoOf = template.placeholders.some((ph) => ph.unknown && nearest(ph.name, [name]) === name);
      if (!used.has(name) && !typoOf) problems.push({ ...at, message: `axis '${name}' is not used by the recipe of ${raw.variants ? `variant '${vname}'` : 'the experiment'} (no \${${name}} in it), so its values would give identical points` });
    }
    variants.push({ name: vname, description: v.description, template, groups, seeds: v.seeds ?? topSeeds, field: formatPath(vp) || '(document)', allowCrimes: v.allow_crimes ?? raw.allow_crimes ?? false });
  }

  const baselines: string[] = [];
  (raw.baselines ?? []).forEach((b, i) => {
    if (!(b in raw.models)) problems.push(problemAt(loc, ['baselines', i], `unknown model '${b}'; models: ${Object.keys(raw.models).join(', ')}`, nearest(b, Object.keys(raw.models))));
    else if (!baselines.includes(b)) baselines.push(b);
  });

  problems.push(...backendProblems(raw.eval, loc));

  const experiment: Experiment = {
    file: loc.file,
    name: raw.name,
    description: raw.description,
    models,
    variants,
    eval: {
      suites: raw.eval.suites,
      limit: raw.eval.limit ?? null,
      batchSize: raw.eval.batch_size ?? DEFAULT_BATCH_SIZE,
      samples: raw.eval.samples ?? DEFAULT_SAMPLES,
      backend: raw.eval.backend,
    },
    baselines,
    report: raw.report ?? {},
    executor: resolveExecutor(raw.executor),
    resources: raw.resources,
    maxModelsOnDisk: raw.max_models_on_disk ?? null,
    pos: (p) => loc.pos(p),
    where: (p) => loc.where(p),
  };
  return { experiment, problems, unavailableModels };
}

/** What the backend's settings and the rest of `eval:` say together: an lm-eval task for every suite, a limit for `{limit}`. */
function backendProblems(ev: RawExperiment['eval'], loc: Locator): Problem[] {
  const b = ev.backend;
  if (b.type !== 'lm-eval') return [];
  const out: Problem[] = [];
  ev.suites.forEach((s, i) => {
    if (b.tasks[s] !== undefined) return;
    const mapped = Object.keys(b.tasks);
    out.push(problemAt(loc, ['eval', 'suites', i], `suite '${s}' has no lm-eval task: add it to eval.backend.tasks (e.g. tasks: {${s}: <lm-eval task name>}; mapped: ${mapped.join(', ') || 'none'})`, nearest(s, mapped)));
  });
  if (b.command.includes('{limit}') && (ev.limit === undefined || ev.limit === null)) out.push(problemAt(loc, ['eval', 'backend', 'command'], 'the command uses {limit} but eval.limit is not set'));
  return out;
}

async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UserError({ file, message: `cannot read the experiment file: ${(e as Error).message}` }, { file, cause: e });
  }
}

/** Load an experiment file; throws UserErrors listing every problem. */
export async function loadExperiment(file: string, opts: LoadExperimentOptions = {}): Promise<Experiment> {
  return parseExperiment(await readText(file), file, opts);
}

/** Load an experiment file with the problems that leave it plannable (see parseExperimentDraft). */
export async function readExperiment(file: string, opts: LoadExperimentOptions = {}): Promise<ExperimentDraft> {
  return parseExperimentDraft(await readText(file), file, opts);
}
