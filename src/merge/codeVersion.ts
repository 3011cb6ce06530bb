import { codeDigest } from '../util/codeDigest.js';

/**
 * What a cached stage output depends on besides its recipe and inputs: the sources of the merge
 * engine and everything it runs (methods, kernels, checkpoint I/O, recipe handling).
 */
export const ENGINE_CODE = `engine-${codeDigest(['merge', 'methods', 'kernels', 'checkpoint', 'recipe'])}`;
