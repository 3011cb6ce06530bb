import type { Command } from 'commander';
import { checkRecipe } from '../../merge/engine.js';
import { parseModelDirFlags } from '../../recipe/recipe.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  program
    .command('validate')
    .description('check a recipe without reading tensor data: YAML, references, parameters, shapes from the headers; lists every problem')
    .argument('<recipe>', 'mergekit YAML recipe')
    .option('--model-dir <name=path>', 'folder for a model named in the recipe (repeatable)', collect, [])
    .option('--allow-crimes', 'accept models whose tensors differ in shape (as merge --allow-crimes would; they are then warnings)')
    .action(async (recipe: string, o: { modelDir: string[]; allowCrimes?: boolean }) => {
      const r = await checkRecipe(recipe, { modelDirs: parseModelDirFlags(o.modelDir), allowCrimes: o.allowCrimes });
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      if (r.problems.length) {
        process.stdout.write(`${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:\n` + r.problems.map((p) => `  - ${p}`).join('\n') + '\n');
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`ok: ${r.stages.length} stage${r.stages.length === 1 ? '' : 's'} (${r.stages.join(' -> ')})\n`);
    });
}
