/** Worker thread of the typed backend: runs one loop over an element range of shared arrays. */
import { parentPort } from 'node:worker_threads';
import { bernoulliRange, combineRange, deltaRange, gramRange, maskedL1Range, weightedSumRange } from './loops.js';
import type { WorkerJob } from './pool.js';
import { bandMaskRange, histHi, histLo } from './select.js';
import { dellaRowsRange } from './della.js';
import { narrowRange, widenRange } from './convert.js';
import { forceGc } from './gc.js';

parentPort!.on('message', (job: WorkerJob) => {
  try {
    const { start, end } = job;
    switch (job.op) {
      case 'gram':
        gramRange(job.models, job.base, start, end, job.partials);
        break;
      case 'maskedL1':
        maskedL1Range(job.x, job.base, job.mask, start, end, job.partials);
        break;
      case 'combine':
        combineRange(job.args, start, end, job.partials);
        break;
      case 'weightedSum':
        weightedSumRange(job.arrays, job.coeffs, job.out, start, end);
        break;
      case 'bernoulli':
        bernoulliRange(job.key, job.p, job.out, start, end, job.partials);
        break;
      case 'delta':
        deltaRange(job.x, job.base, job.out, start, end);
        break;
      case 'gc':
        forceGc();
        break;
      case 'widen16':
        widenRange(job.dtype, job.buf, job.n, start, end);
        break;
      case 'narrow16':
        narrowRange(job.dtype, job.src, job.dst, start, end);
        break;
      case 'histHi':
        histHi(job.data, start, end, job.hist, job.off);
        break;
      case 'histLo':
        histLo(job.data, start, end, job.hiBin, job.hist, job.off);
        break;
      case 'bandMask':
        bandMaskRange(job.data, start, end, job.inner, job.outer, job.mask);
        break;
      case 'della':
        dellaRowsRange(job.d, job.rowLen, job.rho, job.eps, job.key, job.inverse, start, end, job.mask, job.partials);
        break;
      default:
        throw new Error(`unknown kernel job ${JSON.stringify((job as { op?: unknown }).op)}`);
    }
    parentPort!.postMessage({ id: job.id });
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
