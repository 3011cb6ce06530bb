import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | null | undefined;

/**
 * Run a full garbage collection now. SharedArrayBuffers handed to kernel worker threads are kept
 * alive by every isolate that has seen them until each one collects, and idle isolates rarely do,
 * so per-tensor buffers pile up to many GB unless collection is forced (bench/merge-memory.ts).
 * Returns false where the runtime refuses to expose `gc`.
 */
export function forceGc(): boolean {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      try {
        v8.setFlagsFromString('--expose-gc');
        gcFn = vm.runInNewContext('gc') as () => void;
      } catch {
        gcFn = null;
      }
    }
  }
  gcFn?.();
  return !!gcFn;
}
