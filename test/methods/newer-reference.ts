/**
 * Independent, deliberately literal float64 versions of the newer mergekit methods, written from
 * mergekit's Python (the function each follows is named) with whole arrays, sorts and per-element
 * loops: no Gram-matrix shortcuts, no kernels. The method tests compare mergelab against them.
 */

type Vec = Float64Array;

const f64 = (a: ArrayLike<number>): Vec => Float64Array.from(a);
const dot = (a: Vec, b: Vec) => a.reduce((s, v, i) => s + v * b[i], 0);
const norm = (a: Vec) => Math.sqrt(dot(a, a));
const sub = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v - b[i]);

/** mergekit merge_methods/nearswap.py `nearswap_merge`. */
export function refNearswap(base: ArrayLike<number>, x: ArrayLike<number>, t: number): Vec {
  return Float64Array.from(base, (a, i) => {
    const w = Math.min(1, Math.max(0, t / Math.max(Math.abs(a - x[i]), 1e-6)));
    return w * x[i] + (1 - w) * a;
  });
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** mergekit merge_methods/arcee_fusion.py: `_compute_importance`, `DynamicThresholdFusion` (all elements, sorted). */
export function refArceeFusion(base: ArrayLike<number>, x: ArrayLike<number>, shape: number[]): { out: Vec; kept: number } {
  const N = base.length;
  const L = shape.length ? shape[shape.length - 1] : 1;
  const imp = new Float64Array(N);
  for (let o = 0; o < N; o += L) {
    const p = softmax(Array.from(x).slice(o, o + L) as number[]).map((v) => v + 1e-8);
    const q = softmax(Array.from(base).slice(o, o + L) as number[]).map((v) => v + 1e-8);
    const kl = p.reduce((a, pv, c) => a + pv * Math.log(pv / q[c]), 0);
    for (let c = 0; c < L; c++) imp[o + c] = Math.abs(x[o + c] - base[o + c]) * kl;
  }
  const sorted = Array.from(imp).sort((a, b) => a - b);
  const qv = (q: number) => sorted[Math.trunc(q * (N - 1))];
  const thr = qv(0.5) + 1.5 * (qv(0.75) - qv(0.25));
  let kept = 0;
  const out = Float64Array.from(base, (b, i) => {
    if (imp[i] >= thr) {
      kept++;
      return x[i];
    }
    return b;
  });
  return { out, kept };
}

/** mergekit merge_methods/sce.py `sce_merge` with `sce_mask`, `sce_weight` and the TIES `get_mask(method="sum")`. */
export function refSce(base: ArrayLike<number>, xs: ArrayLike<number>[], selectTopk: number): Vec {
  const N = base.length;
  const n = xs.length;
  let tv = xs.map((x) => sub(x, base));
  if (selectTopk < 1) {
    const variance = Array.from({ length: N }, (_, j) => {
      const m = tv.reduce((a, d) => a + d[j], 0) / n;
      return tv.reduce((a, d) => a + (d[j] - m) ** 2, 0) / n;
    });
    const nonzero = variance.filter((v) => v !== 0).length;
    const k = Math.trunc(nonzero * selectTopk);
    const order = variance.map((_, j) => j).sort((a, b) => variance[b] - variance[a] || a - b);
    const keep = new Uint8Array(N);
    for (let r = 0; r < k; r++) keep[order[r]] = 1;
    tv = tv.map((d) => d.map((v, j) => v * keep[j]));
  }
  const means = tv.map((d) => dot(d, d) / N);
  const total = means.reduce((a, b) => a + b, 0);
  const w = Math.abs(total) < 1e-6 ? means.map(() => 1 / n) : means.map((m) => m / total);
  return Float64Array.from(base, (b, j) => {
    const sign = tv.reduce((a, d) => a + d[j], 0) >= 0 ? 1 : -1;
    let num = 0;
    let den = 0;
    tv.forEach((d, i) => {
      if (Math.sign(d[j]) === sign) {
        num += w[i] * d[j];
        den += w[i];
      }
    });
    return b + num / Math.max(den, 1e-6);
  });
}

/** mergekit merge_methods/ram.py `ram_merge` (no `plus`) and `ramplus_tl_merge` (`plus` = {r, alpha}). */
export function refRam(base: ArrayLike<number>, xs: ArrayLike<number>[], epsilon: number, plus: { r: number; alpha: number } | null): Vec {
  const tv = xs.map((x) => Float64Array.from(x, (v, j) => Math.fround(v - base[j])));
  const on = tv.map((d) => Array.from(d, (v) => Math.abs(v) > Math.fround(epsilon)));
  const count = Array.from(base, (_, j) => on.reduce((a, o) => a + +o[j], 0));
  const lambda = on.map((o) => {
    if (!plus) return 1;
    const shared = o.filter((v, j) => v && count[j] > 1).length;
    const unique = o.filter((v, j) => v && count[j] === 1).length;
    const rho = shared / Math.max(unique, epsilon);
    return 1 + plus.r * Math.min(Math.max(rho, 0), plus.alpha);
  });
  return Float64Array.from(base, (b, j) => {
    let s = 0;
    tv.forEach((d, i) => {
      if (!on[i][j]) return;
      s += count[j] === 1 ? d[j] * lambda[i] : d[j] / count[j];
    });
    return b + s;
  });
}

/** mergekit merge_methods/nuslerp.py `NuSlerpTask.execute` and `nuslerp`. */
export function refNuslerp(
  x0: ArrayLike<number>,
  x1: ArrayLike<number>,
  base: ArrayLike<number> | null,
  shape: number[],
  w: [number, number],
  opts: { flatten: boolean; rowWise: boolean },
): Vec {
  const N = x0.length;
  const t = Math.abs(w[0] + w[1]) < 1e-6 ? 0.5 : w[1] / (w[0] + w[1]);
  const v0 = base ? sub(x0, base) : f64(x0);
  const v1 = base ? sub(x1, base) : f64(x1);
  // Index lists of the vectors interpolated one by one.
  const groups: number[][] = [];
  if (opts.flatten || shape.length <= 1) groups.push(Array.from({ length: N }, (_, j) => j));
  else if (opts.rowWise) {
    const cols = N / shape[0];
    for (let c = 0; c < cols; c++) groups.push(Array.from({ length: shape[0] }, (_, r) => r * cols + c));
  } else {
    const L = shape[shape.length - 1];
    for (let o = 0; o < N; o += L) groups.push(Array.from({ length: L }, (_, c) => o + c));
  }
  const out = new Float64Array(N);
  for (const idx of groups) {
    const a = Float64Array.from(idx, (j) => v0[j]);
    const b = Float64Array.from(idx, (j) => v1[j]);
    const au = a.map((v) => v / Math.max(norm(a), 1e-7));
    const bu = b.map((v) => v / Math.max(norm(b), 1e-7));
    const theta = Math.acos(Math.min(1, Math.max(-1, dot(au, bu))));
    const s = Math.sin(theta);
    idx.forEach((j, k) => {
      const r = Math.abs(s) < 1e-8 ? (1 - t) * a[k] + t * b[k] : (Math.sin((1 - t) * theta) * a[k] + Math.sin(t * theta) * b[k]) / s;
      out[j] = (base ? base[j] : 0) + r;
    });
  }
  return out;
}

/** mergekit merge_methods/multislerp.py `multislerp`. */
export function refMultislerp(xs: ArrayLike<number>[], weight: number[], base: ArrayLike<number> | null, normalize = true, eps = 1e-8): Vec {
  if (xs.length === 1) return f64(xs[0]);
  const t = xs.map((x) => (base ? sub(x, base) : f64(x)));
  const ws = normalize ? weight.map((v) => v / weight.reduce((a, b) => a + b, 0)) : weight;
  const norms = t.map(norm);
  const unit = t.map((v, i) => v.map((e) => e / (norms[i] + eps)));
  const N = t[0].length;
  const mean = new Float64Array(N);
  unit.forEach((u, i) => u.forEach((e, j) => (mean[j] += ws[i] * e)));
  const mn = norm(mean);
  let res: Vec;
  if (mn < eps) {
    if (t.length !== 2) throw new Error('antipodal');
    res = Float64Array.from(t[0], (v, j) => v * ws[0] + t[1][j] * ws[1]);
  } else {
    const m = mean.map((v) => v / mn);
    const tangent = new Float64Array(N);
    unit.forEach((u, i) => {
      const d = dot(u, m);
      u.forEach((e, j) => (tangent[j] += ws[i] * (e - d * m[j])));
    });
    const tn = norm(tangent) + eps;
    const avg = norms.reduce((a, nv, i) => a + nv * ws[i], 0);
    res = m.map((v, j) => avg * (v * Math.cos(tn) + (tangent[j] * Math.sin(tn)) / tn));
  }
  return base ? res.map((v, j) => v + base[j]) : res;
}

/** mergekit merge_methods/karcher.py `karcher_merge_tensors` with equal alphas. */
export function refKarcher(xs: ArrayLike<number>[], maxIter = 10, tol = 1e-5): Vec {
  if (xs.length === 1) return f64(xs[0]);
  const n = xs.length;
  const alphas = xs.map(() => 1 / n);
  const norms = xs.map((x) => norm(f64(x)));
  const units = xs.map((x, i) => (norms[i] === 0 ? new Float64Array(x.length) : Float64Array.from(x, (v) => v / norms[i])));
  const valid = norms.map((_, i) => i).filter((i) => norms[i] > tol);
  const N = xs[0].length;
  if (valid.length === 0) return new Float64Array(N);
  const a = valid.map((i) => alphas[i] / valid.reduce((s, k) => s + alphas[k], 0));
  const vu = valid.map((i) => units[i]);
  let u = new Float64Array(N);
  vu.forEach((ui, k) => ui.forEach((v, j) => (u[j] += a[k] * v)));
  const nu = norm(u);
  u = nu < tol ? vu[0].slice() : u.map((v) => v / nu);
  for (let it = 0; it < maxIter; it++) {
    const T = new Float64Array(N);
    vu.forEach((ui, k) => {
      const d = Math.min(1, Math.max(-1, dot(u, ui)));
      const theta = Math.acos(d);
      if (theta < tol) return;
      const f = (a[k] * theta) / Math.sin(theta);
      ui.forEach((v, j) => (T[j] += f * (v - d * u[j])));
    });
    const nT = norm(T);
    if (nT < tol) break;
    u = u.map((v, j) => Math.cos(nT) * v + Math.sin(nT) * (T[j] / nT));
    const un = norm(u);
    if (un > tol) u = u.map((v) => v / un);
  }
  const s = alphas.reduce((acc, al, i) => acc + al * norms[i], 0);
  return u.map((v) => s * v);
}
