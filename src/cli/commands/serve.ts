/** `mergelab serve MODEL_DIR`: an OpenAI-compatible server over the built-in runner. */
import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';
import { wholeNumber } from '../flags.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve a model folder over an OpenAI-compatible API: GET /v1/models, POST /v1/completions, POST /v1/chat/completions')
    .argument('<model_dir>', 'model folder (Hugging Face layout) the built-in runner can load')
    .option('--port <n>', 'port to listen on; 0 picks a free one (printed at start)', wholeNumber('--port', 0), 8000)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--served-model-name <name>', 'the model name clients send (default: model_dir as given)')
    .option('--chat-template <file>', 'Jinja chat template to use instead of tokenizer_config.json chat_template')
    .option('--seed <n>', 'seed of sampled requests that send none (request i uses seed + i)', wholeNumber('--seed', 0), 0)
    .option('--batch-size <n>', 'most requests decoded together', wholeNumber('--batch-size', 1), 32)
    .option('--quiet', 'do not log each request')
    .action(async (modelDir: string, o: { port: number; host: string; servedModelName?: string; chatTemplate?: string; seed: number; batchSize: number; quiet?: boolean }) => {
      if (o.port > 65535) throw new UserError(`--port: expected 0..65535, got ${o.port}`, { field: '--port' });
      const { startServer } = await import('../../serve/index.js');
      const log = (l: string) => process.stderr.write(`${new Date().toISOString()} ${l}\n`);
      const srv = await startServer(modelDir, { port: o.port, host: o.host, servedModelName: o.servedModelName, chatTemplate: o.chatTemplate, seed: o.seed, batchSize: o.batchSize, log: o.quiet ? undefined : log });
      process.stdout.write(`mergelab serve: model ${srv.modelId} at ${srv.url}/v1 (port ${srv.port})\n`);
      let stopping = false;
      const stop = (sig: NodeJS.Signals) => {
        if (stopping) process.exit(130);
        stopping = true;
        log(`${sig}: closing (in-flight requests get 5 s)`);
        srv.stop(5000).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
