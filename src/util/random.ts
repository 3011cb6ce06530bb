/**
 * mulberry32: a tiny seeded generator of floats in [0, 1). Used wherever the project needs cheap,
 * reproducible draws that are not merge masks (task sampling, zoo initialisation and batches,
 * fixtures); merge masks use the counter-based generator in src/kernels/rng.ts instead, because
 * they must not depend on draw order.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
