#!/usr/bin/env python3
"""scripts/gpu_check_summary.py LOGDIR GPU — the machine-readable summary of scripts/gpu-check:
LOGDIR/summary.json (phases; the training step per precision, ours and PyTorch's; the 3×3
convolution passes per precision, ours and cuDNN's; the quality runs' and the paper run's
validation scores) and a short text version on stdout. Reads only what the phases wrote; a
missing piece is recorded as missing, never an error (a failed phase must not hide the others).
"""
import glob
import json
import os
import re
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def steps_done(log):
    try:
        text = open(log).read()
    except OSError:
        return None
    m = re.findall(r'(\d+) steps in', text)
    return int(m[-1]) if m else None


def main(log_dir, gpu):
    out = {'gpu': gpu, 'phases': [], 'step': None, 'convs': {}, 'quality': {}, 'paper_training': None}
    try:
        for line in open(os.path.join(log_dir, 'phases.tsv')):
            name, status, secs, note = (line.rstrip('\n').split('\t') + ['', '', '', ''])[:4]
            out['phases'].append({'phase': name, 'status': status, 'seconds': int(secs or 0), 'note': note})
    except OSError:
        pass
    step = load(os.path.join(log_dir, 'step.json'))
    if step:
        out['step'] = [{k: r.get(k) for k in ('config', 'engine', 'mode', 'forward_ms', 'train_ms', 'peak_mb')}
                       for r in step.get('results', [])]
    for path in sorted(glob.glob(os.path.join(log_dir, 'bench_ops-*.json'))):
        j = load(path)
        if not j:
            continue
        prec = j.get('precision', os.path.basename(path)[10:-5])
        passes = {}
        for op in j.get('ops', []):
            if ' k3' not in op.get('shape', '') and 'k3' not in op.get('shape', ''):
                continue
            kind = op['op'].split()[-1]
            p = passes.setdefault(kind, {'ours_ms': 0.0, 'cudnn_ms': 0.0, 'layers': 0, 'slower_than_cudnn': 0, 'invalid': 0})
            if not op.get('valid'):
                p['invalid'] += 1
                continue
            p['ours_ms'] += op.get('median_ms', 0.0)
            p['cudnn_ms'] += op.get('baseline_median_ms', 0.0)
            p['layers'] += 1
            if op.get('ours_over_baseline', 0) > 1:
                p['slower_than_cudnn'] += 1
        out['convs'][prec] = passes
    for d in sorted(glob.glob(os.path.join(log_dir, 'quality-*'))):
        if not os.path.isdir(d):
            continue
        prec = os.path.basename(d)[len('quality-'):]
        out['quality'][prec] = {'steps': steps_done(d + '.log'), 'metrics': load(os.path.join(d, 'metrics.json'))}
    if os.path.isdir(os.path.join(log_dir, 'train_em')):
        out['paper_training'] = {'steps': steps_done(os.path.join(log_dir, 'train_em.log')),
                                 'metrics': load(os.path.join(log_dir, 'train_em', 'metrics.json'))}
    with open(os.path.join(log_dir, 'summary.json'), 'w') as f:
        json.dump(out, f, indent=1)

    print(f"-- summary.json ({gpu}) --")
    for r in out['step'] or []:
        print(f"step {r['config']:5s} {r['engine']:22s} {r['mode']:5s} forward {r['forward_ms']:7.1f} ms  "
              f"train {r['train_ms']:7.1f} ms  peak {r['peak_mb']:8.0f} MiB")
    for prec, passes in out['convs'].items():
        for kind, p in passes.items():
            print(f"3x3 {kind:10s} {prec}: ours {p['ours_ms']:7.2f} ms, cuDNN {p['cudnn_ms']:7.2f} ms over {p['layers']} layers; "
                  f"{p['slower_than_cudnn']} slower than cuDNN, {p['invalid']} failed validation")
    for prec, q in out['quality'].items():
        m = q['metrics'] or {}
        print(f"quality {prec}: {q['steps']} steps, " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, (int, float))))
    if out['paper_training']:
        m = out['paper_training']['metrics'] or {}
        print(f"paper training: {out['paper_training']['steps']} steps, "
              + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, (int, float))))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
