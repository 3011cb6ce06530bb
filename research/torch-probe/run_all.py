"""Runs probe.py variants side by side on one machine and gathers their generations.

    python3 run_all.py VARIANTS_JSON OUT_DIR [PARALLEL=6] [DEADLINE_S=420]

Variants still running at the deadline are killed; what finished is gathered into
OUT_DIR/gens.jsonl.gz (score it here with bench/torch-probe/score.ts) and OUT_DIR/log.txt.
"""
import gzip
import json
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
variants = json.load(open(sys.argv[1]))
out = sys.argv[2]
par = int(sys.argv[3]) if len(sys.argv) > 3 else 6
deadline = time.time() + (float(sys.argv[4]) if len(sys.argv) > 4 else 420)
os.makedirs(out, exist_ok=True)
tmp = '/tmp/probe-runs'
os.makedirs(tmp, exist_ok=True)
log = open(os.path.join(out, 'log.txt'), 'w')
pending = list(variants)
running = {}
done = []
while (pending or running) and time.time() < deadline:
    while pending and len(running) < par:
        v = pending.pop(0)
        f = open(f'{tmp}/{v["name"]}.log', 'w')
        p = subprocess.Popen([sys.executable, os.path.join(here, 'probe.py'), os.path.join(here, 'data/probe-data.json'), os.path.join(here, '../../data/zoo/base'), f'{tmp}/{v["name"]}.jsonl', json.dumps(v)], stdout=f, stderr=subprocess.STDOUT)
        running[v['name']] = (p, f, time.time())
    for name, (p, f, t0) in list(running.items()):
        if p.poll() is not None:
            f.close()
            print(f'{name}: exit {p.returncode} after {time.time() - t0:.0f}s', flush=True)
            if p.returncode == 0:
                done.append(name)
            del running[name]
    time.sleep(1)
for name, (p, f, t0) in running.items():
    p.kill()
    print(f'{name}: killed at the deadline', flush=True)
with gzip.open(os.path.join(out, 'gens.jsonl.gz'), 'wt') as g:
    for name in done:
        g.write(open(f'{tmp}/{name}.jsonl').read())
for v in variants:
    path = f'{tmp}/{v["name"]}.log'
    if os.path.exists(path):
        log.write(open(path).read())
log.close()
print(f'gathered {len(done)} of {len(variants)} variants: {done}', flush=True)
