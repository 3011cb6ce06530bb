import { describe, expect, it } from 'vitest';
import { BACKEND_NAMES, getKernels } from '../../src/kernels/index.js';
import { UserError } from '../../src/util/errors.js';

describe('getKernels', () => {
  it('auto picks tfjs-node-gpu when it loads, else typed', async () => {
    const k = await getKernels('auto');
    let gpu = false;
    try {
      await import('@tensorflow/tfjs-node-gpu' as string);
      gpu = true;
    } catch {
      gpu = false;
    }
    // Without the package auto must be typed; with it, the GPU when CUDA initialises, else typed.
    if (!gpu) expect(k.name).toBe('typed');
    else expect(['tfjs-node-gpu', 'typed']).toContain(k.name);
    await k.dispose();
  });

  it('names the backend actually used', async () => {
    expect((await getKernels('typed')).name).toBe('typed');
    expect(['tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu']).toContain((await getKernels('tfjs')).name);
    expect((await getKernels('tfjs-cpu')).name).toBe('tfjs-cpu');
    expect((await getKernels('tfjs-wasm')).name).toBe('tfjs-wasm');
  });

  it('rejects an unknown or unavailable backend with a UserError', async () => {
    await expect(getKernels('cuda' as never)).rejects.toThrow(UserError);
    await expect(getKernels('cuda' as never)).rejects.toThrow(new RegExp(BACKEND_NAMES.join('.*')));
    let nodeInstalled = true;
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      nodeInstalled = false;
    }
    if (!nodeInstalled) await expect(getKernels('tfjs-node')).rejects.toThrow(/tfjs-node is not available/);
  });
});
