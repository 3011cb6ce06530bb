import type { TensorDiagnostics } from '../methods/diagnostics.js';

export type { TensorDiagnostics };

export interface StageDiagnostics {
  stage: string;
  method: string;
  /** Which DARE/della rescale rule ran: 'l1' | 'inverse_density' | 'none'. */
  rescaleRule: string;
  seed: number;
  backend: string;
  tensors: TensorDiagnostics[];
  /** Totals over all tensors (norms combined as sqrt of sums of squares, fractions weighted by numel). */
  totals: Omit<TensorDiagnostics, 'tensor' | 'layer'>;
  warnings: string[];
}
