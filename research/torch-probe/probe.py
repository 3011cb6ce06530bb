"""PyTorch replica of the zoo's fine-tuning, for exploring fine-tune recipes on a GPU machine.

The zoo is trained by src/zoo/train.ts on tfjs (one CPU core, ~30 minutes for the two
fine-tunes). This script replays the same fine-tuning (same model function, same batches
shape: task rows plus corpus rows, loss on the answers, AdamW with the same betas, clipping and
schedule) from the committed base in seconds, so many recipe variants and their merges can be
compared in one short GPU call. It only *explores*: the committed zoo is always trained by the
TypeScript trainer, and every number quoted for it comes from `mergelab eval`. Generations are
written out and scored by bench/torch-probe/score.ts with mergelab's own evaluator.

    python3 probe.py DATA_JSON BASE_DIR OUT_JSONL VARIANT_JSON

A variant with "pretrain": true first pretrains its own base from the trainer's initial weights on
the trainer's exact batches and schedule (export.ts --base; "pretrain_steps" truncates), then
fine-tunes from that base instead of BASE_DIR: a corpus change can be tried end to end.
"""
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DEV = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
PAD, NEWLINE = 0, 5


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        assert info['dtype'] == 'F32', name
        a, b = info['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(blob[a:b], dtype=np.float32).copy()).reshape(info['shape']).to(DEV)
    return out


class Cfg:
    def __init__(self, m):
        self.d = m['hiddenSize']
        self.layers = m['numLayers']
        self.heads = m['numHeads']
        self.kv = m['numKvHeads']
        self.hd = self.d // self.heads
        self.eps = m['rmsNormEps']
        self.theta = m['ropeTheta']
        self.vocab = m['vocabSize']


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(cfg, pos):
    half = cfg.hd // 2
    inv = 1.0 / (cfg.theta ** (torch.arange(half, device=DEV, dtype=torch.float64) * 2 / cfg.hd))
    ang = pos.to(torch.float64)[..., None] * inv  # [B, T, half]
    ang = torch.cat([ang, ang], -1)
    return ang.cos().float()[:, None], ang.sin().float()[:, None]  # [B, 1, T, hd]


def rot_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def forward(cfg, P, ids, pos, valid=None):
    """Logits [B, T, V]. valid [B, T] marks real (non-left-pad) tokens."""
    B, T = ids.shape
    x = P['model.embed_tokens.weight'][ids]
    cos, sin = rope(cfg, pos)
    causal = torch.ones(T, T, dtype=torch.bool, device=DEV).tril()
    if valid is None:
        mask = causal[None, None]
    else:
        # Each position may always see itself, so padded rows never softmax over nothing.
        mask = (causal[None] & valid[:, None, :]) | torch.eye(T, dtype=torch.bool, device=DEV)[None]
        mask = mask[:, None]
    rep = cfg.heads // cfg.kv
    for l in range(cfg.layers):
        p = f'model.layers.{l}.'
        h = rms(x, P[p + 'input_layernorm.weight'], cfg.eps)
        q = (h @ P[p + 'self_attn.q_proj.weight'].T).view(B, T, cfg.heads, cfg.hd).transpose(1, 2)
        k = (h @ P[p + 'self_attn.k_proj.weight'].T).view(B, T, cfg.kv, cfg.hd).transpose(1, 2)
        v = (h @ P[p + 'self_attn.v_proj.weight'].T).view(B, T, cfg.kv, cfg.hd).transpose(1, 2)
        q = q * cos + rot_half(q) * sin
        k = k * cos + rot_half(k) * sin
        k = k.repeat_interleave(rep, 1)
        v = v.repeat_interleave(rep, 1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(cfg.hd)
        att = scores.masked_fill(~mask, float('-inf')).softmax(-1) @ v
        x = x + att.transpose(1, 2).reshape(B, T, cfg.d) @ P[p + 'self_attn.o_proj.weight'].T
        h2 = rms(x, P[p + 'post_attention_layernorm.weight'], cfg.eps)
        x = x + (F.silu(h2 @ P[p + 'mlp.gate_proj.weight'].T) * (h2 @ P[p + 'mlp.up_proj.weight'].T)) @ P[p + 'mlp.down_proj.weight'].T
    x = rms(x, P['model.norm.weight'], cfg.eps)
    return x @ P['lm_head.weight'].T


# ----------------------------------------------------------------------------------------------
# Training


def clip_(grads, max_norm=1.0):
    """Scales the gradients in place to a global norm of at most max_norm, as the trainer does."""
    gnorm = torch.sqrt(sum((g * g).sum() for g in grads))
    torch._foreach_mul_(grads, torch.clamp(max_norm / gnorm, max=1.0))


@torch.no_grad()
def adam_direction(grads, m, s, t, b1=0.9, b2=0.98, eps=1e-8):
    """Advances Adam's moments in place and returns the bias-corrected update (t counts from 1)."""
    torch._foreach_mul_(m, b1)
    torch._foreach_add_(m, grads, alpha=1 - b1)
    torch._foreach_mul_(s, b2)
    torch._foreach_addcmul_(s, grads, grads, value=1 - b2)
    denom = torch._foreach_sqrt(torch._foreach_div(s, 1 - b2 ** t))
    torch._foreach_add_(denom, eps)
    return torch._foreach_div(torch._foreach_div(m, 1 - b1 ** t), denom)


def pretrain(cfg, data_dir, v, log):
    meta = json.load(open(f'{data_dir}/base-steps.json'))
    rows = np.fromfile(f'{data_dir}/base-rows.bin', dtype=np.uint8)
    P = load_safetensors(f'{data_dir}/init/model.safetensors')
    names = list(P)
    params = [P[n].requires_grad_(True) for n in names]
    m = [torch.zeros_like(p) for p in params]
    s = [torch.zeros_like(p) for p in params]
    steps = meta['steps'][: v.get('pretrain_steps') or len(meta['steps'])]
    t = 0
    t0 = time.time()
    for i, st in enumerate(steps):
        if st['restart']:
            for x in m + s:
                x.zero_()
            t = 0
        t += 1
        B, T = st['rows'], st['T']
        x = torch.from_numpy(rows[st['offset']:st['offset'] + B * (T + 1)].astype(np.int64)).view(B, T + 1).to(DEV)
        logits = forward(cfg, P, x[:, :-1], torch.arange(T, device=DEV)[None].expand(B, T))
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), x[:, 1:].reshape(-1))
        if i == 0:
            log(f'{v["name"]} pretrain: loss at step 0 {loss.item():.5f}, trainer {meta["loss0"]:.5f}')
            assert abs(loss.item() - meta['loss0']) < 1e-3, 'the replica does not train the zoo model'
        grads = list(torch.autograd.grad(loss, params))
        clip_(grads)
        upd = adam_direction(grads, m, s, t)
        with torch.no_grad():
            for u, p in zip(upd, params):
                if p.dim() == 2:  # decoupled decay on matrices only, as the trainer does
                    u.add_(p, alpha=meta['weightDecay'])
            torch._foreach_add_(params, upd, alpha=-st['lr'])
        if i % 500 == 0 or i == len(steps) - 1:
            log(f'{v["name"]} pretrain step {i + 1}/{len(steps)} loss {loss.item():.4f} {time.time() - t0:.1f}s')
    return {n: p.detach() for n, p in P.items()}


def lr_at(plan, step, total):
    if step < plan['warmup']:
        return plan['lr'] * (step + 1) / plan['warmup']
    t = min(1.0, (step - plan['warmup']) / max(1, total - plan['warmup']))
    return plan['lr'] * (plan['minLrFrac'] + (1 - plan['minLrFrac']) * 0.5 * (1 + math.cos(math.pi * t)))


def corpus_row(rng, corpus, n, bos):
    row = [bos]
    while len(row) < n:
        row.extend(corpus[rng.integers(len(corpus))])
        row.append(NEWLINE)
    return row[:n]


def make_batch(rng, examples, corpus, v, bos):
    n_task = max(1, int(math.floor(v['batch'] * v['task_frac'] + 0.5)))
    picked = [examples[rng.integers(len(examples))] for _ in range(n_task)]
    T = int(math.ceil(max(len(e['p']) + len(e['t']) - 1 for e in picked) / 16) * 16)
    ids, w = [], []
    for e in picked:
        toks = e['p'] + e['t']
        row_w = [0.0] * T
        for j in range(len(e['p']) - 1, len(toks) - 1):
            row_w[j] = 1.0
        ids.append(toks + [PAD] * (T + 1 - len(toks)))
        w.append(row_w)
    for _ in range(v['batch'] - n_task):
        ids.append(corpus_row(rng, corpus, T + 1, bos))
        w.append([v['corpus_weight']] * T)
    t = torch.tensor(ids, device=DEV)
    return t[:, :-1], t[:, 1:], torch.tensor(w, device=DEV)


def finetune(cfg, base, data, v, kind, log):
    plan = dict(data['plan'][kind])
    plan['lr'] = v.get('lr', plan['lr'])
    steps = v[f'{kind}_steps']
    examples = data[f'{kind}_train']
    corpus = data['corpus']
    frozen = set(v.get('freeze', []))
    P = {n: t.clone().requires_grad_(not any(n.startswith(f) for f in frozen)) for n, t in base.items()}
    m = {n: torch.zeros_like(t) for n, t in base.items()}
    s = {n: torch.zeros_like(t) for n, t in base.items()}
    rng = np.random.default_rng(v['seed'] * 1000 + (1 if kind == 'math' else 2))
    pos_cache = {}
    lam = v.get('decay_to_base', 0.0)
    t0 = time.time()
    for step in range(steps):
        ids, tgt, w = make_batch(rng, examples, corpus, v, data['bos'])
        T = ids.shape[1]
        if T not in pos_cache:
            pos_cache[T] = torch.arange(T, device=DEV)[None]
        names = [n for n, p in P.items() if p.requires_grad]
        params = [P[n] for n in names]
        pos = pos_cache[T].expand(ids.shape[0], T)
        wf = w.reshape(-1)

        def loss_at(shift):
            Q = {n: (t + shift[n] if n in shift else t) for n, t in P.items()}
            nll = F.cross_entropy(forward(cfg, Q, ids, pos).reshape(-1, cfg.vocab), tgt.reshape(-1), reduction='none')
            return (nll * wf).sum() / wf.sum().clamp(min=1)

        shift = {}
        if v.get('noise', 0) > 0:
            # Gradient at a random point alpha * ||w|| away in each tensor: seeks minima that
            # tolerate a perturbation the size of another fine-tune's delta.
            for n in names:
                z = torch.randn_like(P[n])
                shift[n] = (v['noise'] * P[n].detach().norm() / z.norm()) * z
        if v.get('sam', 0) > 0:
            g0 = torch.autograd.grad(loss_at({}), params)
            gn = torch.sqrt(sum((g * g).sum() for g in g0))
            wn = torch.sqrt(sum((P[n].detach() ** 2).sum() for n in names))
            for n, g in zip(names, g0):
                shift[n] = (v['sam'] * wn / gn) * g
        loss = loss_at(shift)
        grads = list(torch.autograd.grad(loss, params))
        clip_(grads)
        lr = lr_at(plan, step, steps)
        ms = [m[n] for n in names]
        with torch.no_grad():
            if v.get('optimizer', 'adam') == 'sgd':
                torch._foreach_mul_(ms, 0.9)
                torch._foreach_add_(ms, grads)
                upd = [x.clone() for x in ms]
                lr = lr * v['sgd_mult']
            else:
                upd = adam_direction(grads, ms, [s[n] for n in names], step + 1)
            if lam > 0:
                torch._foreach_add_(upd, torch._foreach_sub(params, [base[n] for n in names]), alpha=lam)
            torch._foreach_add_(params, upd, alpha=-lr)
        if step % 400 == 0 or step == steps - 1:
            log(f'{v["name"]} {kind} step {step + 1}/{steps} loss {loss.item():.4f} {time.time() - t0:.1f}s')
    return {n: p.detach() for n, p in P.items()}


# ----------------------------------------------------------------------------------------------
# Evaluation: greedy generation, left-padded, no cache (the model is tiny; the GPU recomputes)


@torch.no_grad()
def generate(cfg, P, prompts, max_new, eos, bs=150):
    outs = []
    for i in range(0, len(prompts), bs):
        chunk = prompts[i:i + bs]
        B = len(chunk)
        L = max(len(p) for p in chunk)
        ids = torch.full((B, L + max_new), PAD, dtype=torch.long, device=DEV)
        valid = torch.zeros((B, L + max_new), dtype=torch.bool, device=DEV)
        pad = torch.tensor([L - len(p) for p in chunk], device=DEV)
        for b, p in enumerate(chunk):
            ids[b, L - len(p):L] = torch.tensor(p, device=DEV)
            valid[b, L - len(p):] = True
        pos = (torch.arange(L + max_new, device=DEV)[None] - pad[:, None]).clamp(min=0)
        done = torch.zeros(B, dtype=torch.bool, device=DEV)
        for k in range(max_new):
            cur = L + k
            logits = forward(cfg, P, ids[:, :cur], pos[:, :cur], valid[:, :cur])[:, -1]
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            ids[:, cur] = nxt
            done |= nxt == eos
            if bool(done.all()):
                break
        gen = ids[:, L:].tolist()
        for row in gen:
            if eos in row:
                row = row[:row.index(eos)]
            outs.append(row)
    return outs


def delta_stats(base, ft):
    rel = sorted(float((ft[n] - base[n]).norm() / base[n].norm()) for n in base)
    return {'median_rel': rel[len(rel) // 2] if len(rel) % 2 else 0.5 * (rel[len(rel) // 2 - 1] + rel[len(rel) // 2])}


def cosine(base, a, b):
    da = torch.cat([(a[n] - base[n]).flatten() for n in base])
    db = torch.cat([(b[n] - base[n]).flatten() for n in base])
    return float((da @ db) / (da.norm() * db.norm()))


def ties(base, fts, weights, density, normalize):
    out = {}
    for n in base:
        ds = []
        for ft in fts:
            d = ft[n] - base[n]
            k = max(1, int(round(density * d.numel())))
            thr = d.abs().flatten().kthvalue(d.numel() - k + 1).values
            ds.append(torch.where(d.abs() >= thr, d, torch.zeros_like(d)))
        wd = torch.stack([w * d for w, d in zip(weights, ds)])
        sign = torch.sign(wd.sum(0))
        keep = torch.sign(wd) == sign
        mixed = (wd * keep).sum(0)
        if normalize:
            div = (torch.tensor(weights, device=DEV).view(-1, *([1] * d.dim())) * keep).sum(0)
            div[div.abs() < 1e-8] = 1
            mixed = mixed / div
        out[n] = base[n] + mixed
    return out


def main():
    data_path, base_dir, out_path, variant = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = json.load(open(data_path))
    cfg = Cfg(data['plan']['model'])
    base = load_safetensors(f'{base_dir}/model.safetensors')
    log = lambda s: print(s, flush=True)
    data_dir = data_path.rsplit('/', 1)[0] if '/' in data_path else '.'
    ref = data['reference']
    got = forward(cfg, base, torch.tensor([ref['ids']], device=DEV), torch.arange(len(ref['ids']), device=DEV)[None])[0]
    diff = float((got - torch.tensor(ref['logits'], device=DEV)).abs().max())
    log(f'{variant["name"]}: replica vs tfjs reference logits, max abs diff {diff:.2e}')
    assert diff < 1e-3, 'the replica does not compute the zoo model'
    v = {'batch': 8, 'task_frac': 0.75, 'corpus_weight': 1.0, 'seed': 1, 'math_steps': 1200, 'chat_steps': 800}
    v.update(variant)
    t0 = time.time()
    if v.get('pretrain'):
        base = pretrain(cfg, data_dir, v, log)
    math_ft = finetune(cfg, base, data, v, 'math', log)
    chat_ft = finetune(cfg, base, data, v, 'chat', log)
    train_s = time.time() - t0
    models = {'math': math_ft, 'chat': chat_ft}
    for wm, wc in v.get('ta', [[1, 1], [1, 0.75], [1, 0.65], [0.9, 0.75], [1, 0.85], [0.9, 0.9], [1, 0.5]]):
        models[f'ta_{wm}_{wc}'] = {n: base[n] + wm * (math_ft[n] - base[n]) + wc * (chat_ft[n] - base[n]) for n in base}
    for dens, norm in v.get('ties', [[0.5, False]]):
        models[f'ties_d{dens}_{"norm" if norm else "sum"}'] = ties(base, [math_ft, chat_ft], [1.0, 1.0], dens, norm)
    limit = v.get('eval_limit')
    itos = data['itos']
    with open(out_path, 'w') as f:
        meta = {'variant': v, 'train_s': round(train_s, 1), 'math_delta': delta_stats(base, math_ft), 'chat_delta': delta_stats(base, chat_ft), 'cosine': cosine(base, math_ft, chat_ft), 'ref_diff': diff}
        f.write(json.dumps({'meta': meta}) + '\n')
        for name, P in models.items():
            for suite in ('math', 'chat'):
                items = data['evals'][suite][:limit]
                gens = generate(cfg, P, [it['ids'] for it in items], items[0]['max_new'], data['eos'])
                for it, g in zip(items, gens):
                    f.write(json.dumps({'variant': v['name'], 'model': name, 'suite': suite, 'id': it['id'], 'text': ''.join(itos[t] for t in g)}) + '\n')
    log(f'{v["name"]}: done, train {train_s:.0f}s, total {time.time() - t0:.0f}s; math delta {meta["math_delta"]["median_rel"]:.4f}, chat delta {meta["chat_delta"]["median_rel"]:.4f}, cosine {meta["cosine"]:.3f}')


if __name__ == '__main__':
    main()
