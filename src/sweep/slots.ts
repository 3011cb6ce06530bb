import type { Gpu } from '../eval/backends/config.js';
import type { Experiment } from './experiment.js';
import type { Resources } from './graph.js';

/**
 * A machine's capacity as slots: CPU slots (worker processes), evaluation slots (evaluations by
 * a server or program of their own, whose workers only wait) and the GPUs tasks may be given. A
 * task takes the slots its resources ask for and gives them back when it ends; GPUs come back as
 * CUDA_VISIBLE_DEVICES names them (an index or a UUID), which the task is told.
 */

export interface Allocation {
  cpus: number;
  evals: number;
  /** The GPUs given to the task. */
  gpus: Gpu[];
}

export interface Capacity {
  cpus: number;
  /** Evaluations by other backends than the built-in one at once (default 0: none can run). */
  evals?: number;
  /** The GPUs tasks may be given (an experiment's `resources.gpus`, say [0, 1, 2, 3]). */
  gpus: readonly Gpu[];
}

export class Slots {
  private cpusFree: number;
  private evalsFree: number;
  /** Positions in `capacity.gpus` of the free GPUs, lowest first. */
  private readonly gpusFree: number[];

  constructor(readonly capacity: Capacity) {
    this.cpusFree = capacity.cpus;
    this.evalsFree = capacity.evals ?? 0;
    this.gpusFree = capacity.gpus.map((_, i) => i);
  }

  /** Could the task ever run here (on an idle machine)? */
  admits(r: Resources): boolean {
    return r.cpus <= this.capacity.cpus && r.evals <= (this.capacity.evals ?? 0) && r.gpus <= this.capacity.gpus.length;
  }

  fits(r: Resources): boolean {
    return r.cpus <= this.cpusFree && r.evals <= this.evalsFree && r.gpus <= this.gpusFree.length;
  }

  /** CPU slots not taken. */
  get freeCpus(): number {
    return this.cpusFree;
  }

  take(r: Resources): Allocation {
    if (!this.fits(r)) throw new Error('internal: took slots that are not free');
    this.cpusFree -= r.cpus;
    this.evalsFree -= r.evals;
    return { cpus: r.cpus, evals: r.evals, gpus: this.gpusFree.splice(0, r.gpus).map((i) => this.capacity.gpus[i]) };
  }

  give(a: Allocation): void {
    this.cpusFree += a.cpus;
    this.evalsFree += a.evals;
    for (const g of a.gpus) this.gpusFree.push(this.capacity.gpus.indexOf(g));
    this.gpusFree.sort((x, y) => x - y);
  }
}

/**
 * Evaluations by another backend than the built-in one that may run at once here: one per
 * `gpus_per_eval` of the listed GPUs, else one per worker (`--jobs`). Never more servers than that.
 */
export function evalCapacity(exp: Pick<Experiment, 'eval' | 'resources'>, jobs: number): number {
  if (exp.eval.backend.type === 'builtin') return 0;
  const { gpus, gpus_per_eval } = exp.resources;
  return gpus.length > 0 ? Math.floor(gpus.length / gpus_per_eval) : jobs;
}
