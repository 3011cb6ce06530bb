/** `mergelab validate FILE`: every problem of a recipe, or of an experiment and all its recipes, in one pass. */
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { UserError, formatProblem, isUserError, sortProblems, type Problem } from '../../util/errors.js';
import { EXIT } from '../exit.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** An experiment file has `eval` or `variants` at the top; anything else is read as a mergekit recipe. */
export async function isExperimentFile(file: string): Promise<boolean> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return false; // the recipe reader names the file and the reason
  }
  const YAML = await import('yaml');
  const docs = YAML.parseAllDocuments(text);
  const all = Array.isArray(docs) ? docs : [docs];
  return all.some((d) => YAML.isMap(d.contents) && (d.contents.has('eval') || d.contents.has('variants')));
}

function report(problems: readonly Problem[], warnings: readonly string[], ok: string): void {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (problems.length) {
    process.stdout.write(`${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` + sortProblems(problems).map((p) => `  - ${formatProblem(p).replace(/\n/g, '\n    ')}`).join('\n') + '\n');
    process.exitCode = EXIT.input;
    return;
  }
  process.stdout.write(ok + '\n');
}

export function register(program: Command): void {
  program
    .command('validate')
    .description('check a recipe, or an experiment file and every recipe of its sweep, without reading tensor data: YAML, references, methods, parameters, suites, shapes from the headers; lists every problem at its line and column')
    .argument('<file>', 'mergekit YAML recipe, or experiment file (experiments/NAME.yaml)')
    .option('--model-dir <name=path>', 'folder for a model named in a recipe (repeatable)', collect, [])
    .option('--zoo <dir>', 'folder that an experiment\'s zoo:NAME models are read from (default: data/zoo)')
    .option('--allow-crimes', 'accept what merge --allow-crimes accepts (different architectures, tensors that differ in shape, vocabularies that differ with no tokenizer setting): warnings instead of problems')
    .action(async (file: string, o: { modelDir: string[]; zoo?: string; allowCrimes?: boolean }) => {
      if (await isExperimentFile(file)) {
        if (o.modelDir.length) throw new UserError(`--model-dir: ${file} is an experiment file, which names its models under \`models:\`; --model-dir is for recipes`, { field: '--model-dir' });
        const { checkExperimentFile } = await import('../../sweep/check.js');
        const r = await checkExperimentFile(file, { zooDir: o.zoo }).catch((e: unknown) => {
          // A file that cannot be read as an experiment at all (syntax, shape): its problems are the list.
          if (isUserError(e)) return { problems: e.problems, name: '', points: 0, variants: 0 };
          throw e;
        });
        report(r.problems, [], `ok: experiment ${r.name}: ${r.points} point${r.points === 1 ? '' : 's'} in ${r.variants} variant${r.variants === 1 ? '' : 's'}, every recipe checked against the models' headers`);
        return;
      }
      const [{ checkRecipe }, { parseModelDirFlags }] = await Promise.all([import('../../merge/engine.js'), import('../../recipe/recipe.js')]);
      const r = await checkRecipe(file, { modelDirs: parseModelDirFlags(o.modelDir), allowCrimes: o.allowCrimes });
      report(r.problems, r.warnings, `ok: ${r.stages.length} stage${r.stages.length === 1 ? '' : 's'} (${r.stages.join(' -> ')})`);
    });
}
