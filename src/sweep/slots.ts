import type { Resources } from './graph.js';

/**
 * A machine's capacity as slots: CPU slots (worker processes) and numbered GPUs. A task takes the
 * slots its resources ask for and gives them back when it ends; GPUs come back as device
 * indices, which the task is told (CUDA_VISIBLE_DEVICES and the like).
 */

export interface Allocation {
  cpus: number;
  /** Device indices of the GPUs given to the task. */
  gpus: number[];
}

export class Slots {
  private cpusFree: number;
  private readonly gpusFree: number[];

  /** `gpus`: the device indices tasks may be given (an experiment's `resources.gpus`, say [0, 1, 2, 3]). */
  constructor(readonly capacity: { cpus: number; gpus: readonly number[] }) {
    this.cpusFree = capacity.cpus;
    this.gpusFree = [...capacity.gpus].sort((a, b) => a - b);
  }

  /** Could the task ever run here (on an idle machine)? */
  admits(r: Resources): boolean {
    return r.cpus <= this.capacity.cpus && r.gpus <= this.capacity.gpus.length;
  }

  fits(r: Resources): boolean {
    return r.cpus <= this.cpusFree && r.gpus <= this.gpusFree.length;
  }

  /** CPU slots not taken. */
  get freeCpus(): number {
    return this.cpusFree;
  }

  /** No CPU slot left: nothing more can start. */
  get full(): boolean {
    return this.cpusFree <= 0;
  }

  take(r: Resources): Allocation {
    if (!this.fits(r)) throw new Error('internal: took slots that are not free');
    this.cpusFree -= r.cpus;
    return { cpus: r.cpus, gpus: this.gpusFree.splice(0, r.gpus) };
  }

  give(a: Allocation): void {
    this.cpusFree += a.cpus;
    this.gpusFree.push(...a.gpus);
    this.gpusFree.sort((x, y) => x - y);
  }
}
