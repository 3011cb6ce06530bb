import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | null | undefined;

/**
 * Run a full garbage collection in this isolate now. A SharedArrayBuffer handed to kernel worker
 * threads stays alive while any isolate that has seen it still holds a wrapper, and idle isolates
 * rarely collect; the typed backend calls this (here and in each worker) after it lets buffers go.
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
