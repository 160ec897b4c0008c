#!/usr/bin/env python3
"""bench/time_model.py — a static time model of the convolution GEMMs on an H100/H200, calibrated
on the one GPU measurement we have, then used to predict the new kernels before a GPU runs them.

Inputs: bench/sass_loop.py --json files (main-loop instruction counts, HMMA counts, registers,
occupancy) for the kernels of conv2d.cu and upconv2d.cu, labelled by precision and file:
  python3 bench/time_model.py --predict new_conv.json new_upconv.json
The calibration kernels' files (commit a57c5f0, the kernels the H200 ran) are kept in
bench/calibration/ and used unless --calibrate names others.

Model of one GEMM launch (C = M × N per z, K per z, tiles TM × TN, 8 warps per block):
  blocks = ceil(M/TM)·ceil(N/TN)·Z; iterations = ceil(K / K_slice); the busiest SM runs
  b = ceil(blocks / SMs) blocks, at most `occupancy` at a time;
  issue   = b · 8 warps · (iterations + 1) · I_loop / (4 schedulers · η · min(1, W / 16))
            (W = warps resident on the SM; fewer than 16 cannot hide the loop's latencies)
  tensor  = b · 8 · iterations · HMMA_loop / R   (R = mma.sync issue rate per SM and cycle)
  memory  = compulsory bytes (A, B read once, C written once) / 4.3 TB/s
  time    = max(issue, tensor) / clock + memory-overlap ignored + 3 µs launch
  (+ the split-K partial sum: (splits + 1)·M·N·4 bytes / 4.3 TB/s + 3 µs).
  Splits: split_plan, the twin of kernels/split_k_plan.h (every pass since 2026-12-02; the
  calibration kernels split the weight gradients alone).
η (issue efficiency) is the one fitted parameter: the H200 run of 2026-11-26 (commit a57c5f0,
docs/benchmarks.md) summed the 3×3 passes of the paper configuration to 34.1 / 43.2 / 52.6 ms
(forward / data / weight gradient); per-layer times were not recorded, only their rate ranges
(8–9.5, 7–8, 5–7.5 TFLOP/s), which the model is checked against. R is an assumption, not a
measurement: 0.6 of the dense datasheet rate (one HMMA.1688 TF32 or HMMA.16816 BF16 per cycle
per SM), the share mma.sync is reported to reach on Hopper without wgmma.
"""
import argparse
import json
import math
import os
import re

SMS, CLOCK_HZ, BW = 132, 1.98e9, 4.3e12
LAUNCH_S = 3e-6
R_HMMA = 0.6
MEASURED = {'forward': 34.1, 'data': 43.2, 'weight': 52.6}  # ms, H200 2026-11-26, 3×3 convs
MEASURED_RATES = {'forward': (8.0, 9.5), 'data': (7.0, 8.0), 'weight': (5.0, 7.5)}  # TFLOP/s per layer


def layers(base=64, tile=572, depth=4):
    """The paper configuration's convolutions: (name, kind, cin, cout, h_in, k) with kind conv/upconv."""
    out, s, cin, skips = [], tile, 1, []
    for l in range(depth + 1):
        c = base << l
        for i in range(2):
            out.append((f"{'bottom' if l == depth else 'down%d' % l}.conv{i + 1}", 'conv', cin if i == 0 else c, c, s, 3))
            s -= 2
        skips.append(c)
        if l < depth:
            s //= 2
        cin = c
    for l in range(depth - 1, -1, -1):
        c = base << l
        out.append((f"up{l}.upconv", 'upconv', cin, c, s, 2))
        s *= 2
        for i in range(2):
            out.append((f"up{l}.conv{i + 1}", 'conv', 2 * c if i == 0 else c, c, s, 3))
            s -= 2
        cin = c
    out.append(("head.conv1x1", 'conv', cin, 2, s, 1))
    return out


def split_plan(tile_m, tile_n, k_slice, m, n, groups, k_total):
    """(splits, chunk): the twin of plan_split_k in kernels/split_k_plan.h, integer for integer
    (the predictions are of the splits the code makes; tests/test_conv2d.cpp pins a few)."""
    if m <= 0 or n <= 0 or groups <= 0 or k_total <= 0:
        return 1, max(k_total, 0)
    cdiv = lambda a, b: (a + b - 1) // b
    tiles = cdiv(m, tile_m) * cdiv(n, tile_n) * groups
    max_splits = min(k_total // 256, SMS * 2, 65535 // groups, (1 << 24) // (m * n * groups))
    best, best_cost = (1, k_total), None
    for s in range(1, max(max_splits, 1) + 1):
        chunk = k_total if s == 1 else cdiv(cdiv(k_total, s), k_slice) * k_slice
        if cdiv(k_total, chunk) != s:
            continue
        busiest = cdiv(tiles * s, SMS)
        cost = busiest * (cdiv(chunk, k_slice) + 1) * (2 if busiest < 2 else 1)
        if s > 1:
            cost += 4 + (s + 1) * m * n * groups // (1 << 20)
        if best_cost is None or cost < best_cost:
            best, best_cost = (s, chunk), cost
    return best


def gemms(layer, kernels):
    """The GEMM launches of each pass of a layer: {pass: (M, N, Z, Kz, splits)} (Z = grid z =
    images · splits, Kz = K per split), the way the launchers of conv2d.cu / upconv2d.cu set them
    up (kernels: 'old' = the 64×64 first version of a57c5f0, whose weight gradients alone split,
    to ~264 blocks; otherwise every pass splits by split_plan)."""
    name, kind, cin, cout, h, k = layer
    first = name == 'down0.conv1'
    if kind == 'conv':
        ho = h - k + 1
        passes = {'forward': (cout, ho * ho, 1, cin * k * k), 'data': (cin, h * h, 1, cout * k * k),
                  'weight': (cout, cin * k * k, 0, ho * ho)}
        if first:
            del passes['data']
    else:
        passes = {'forward': (4 * cout, h * h, 1, cin), 'data': (cin, h * h, 1, 4 * cout),
                  'weight': (cin, 4 * cout, 0, h * h)}
    out = {}
    for p, (m, n, z, kk) in passes.items():
        if kernels == 'old':
            if z == 0:  # a57c5f0's split-K of the weight gradients: ~264 blocks, >= 256 terms a split
                tiles = math.ceil(m / 64) * math.ceil(n / 64)
                splits = min(math.ceil(264 / tiles), max(1, kk // 256))
                chunk = math.ceil(kk / splits)
                splits = math.ceil(kk / chunk)
                out[p] = (m, n, splits, chunk, splits)
            else:
                out[p] = (m, n, 1, kk, 1)
            continue
        groups = max(z, 1)  # images (batch 1) of the forward and data gradient; 1 for a weight gradient
        tm, tn = (64, 128) if m <= 64 else (128, 128)
        splits, chunk = split_plan(tm, tn, 8 if kernels == 'fp32' else 32, m, n, groups, kk)
        out[p] = (m, n, groups * splits, chunk, splits)
    return out


def kernel_stats(rows, op, ks, precision, wide):
    """The sass_loop row of the kernel for op ('ForwardOp'...), KS ('3', '0' or '' for upconv),
    precision and tiling."""
    for r in rows:
        m = re.match(r'(\w+) Tiling<(\d+),(\d+),\d+,\d+> (\w+)(?:<([\d,]+)>)?', r['kernel'])
        if not m or m.group(1) != precision or m.group(4) != op or (m.group(5) or '') != ks:
            continue
        tm = int(m.group(2))
        if wide is None or (tm == 128) == wide:
            return dict(r, tm=tm, tn=int(m.group(3)))
    raise KeyError(f"no kernel {precision} {op}<{ks}> wide={wide}")


def launch_time(m, n, z, kz, splits, st, k_slice):
    blocks = math.ceil(m / st['tm']) * math.ceil(n / st['tn']) * z
    iters = math.ceil(kz / k_slice)
    b = math.ceil(blocks / SMS)
    occ = max(1, st.get('blocks_per_sm', 2))
    resident_warps = 8 * min(b, occ)
    loop = st['loop']
    issue = b * 8 * (iters + 1) * loop['instructions'] / (4 * ETA * min(1.0, resident_warps / 16))
    tensor = b * 8 * iters * loop['hmma'] / R_HMMA
    t = max(issue, tensor) / CLOCK_HZ + LAUNCH_S
    if splits > 1:
        t += (splits + 1) * m * n * 4 / BW + LAUNCH_S
    return t


def fused_concat(rows_conv):
    """Whether these kernels read the decoder's skip and up-convolution in place (conv2d_concat's
    ConcatForwardOp / ConcatBackwardWeightOp, 2026-12-02)."""
    return any('ConcatForwardOp' in r['kernel'] for r in rows_conv)


def predict(rows_conv, rows_up, precision, kernels):
    """{(layer, pass): seconds} and FLOPs."""
    out = {}
    k_slice = {'old': 16, 'fp32': 8}.get(kernels, 32) if precision == 'fp32' else 32
    concat = fused_concat(rows_conv)
    for layer in layers():
        name, kind, cin, cout, h, k = layer
        for p, (m, n, z, kz, splits) in gemms(layer, kernels).items():
            op = {'forward': 'ForwardOp', 'data': 'BackwardDataOp', 'weight': 'BackwardWeightOp'}[p]
            rows = rows_conv if kind == 'conv' else rows_up
            # conv2d.cu's Ops: <KS, Padded> for forward and weight gradient (the U-Net's valid 3×3
            # layers take <3,0>, the 1×1 head <0,1>), <KS> for the data gradient; the decoder's
            # first convolutions the Concat Ops (no template arguments) where they exist.
            if kind == 'upconv' or kernels == 'old':
                ks = ''
            elif concat and name.startswith('up') and name.endswith('conv1') and p != 'data':
                op, ks = 'Concat' + op, ''
            elif p == 'data':
                ks = '3' if k == 3 else '0'
            else:
                ks = '3,0' if k == 3 else '0,1'
            st = kernel_stats(rows, op, ks, precision, None if kernels == 'old' else m > 64)
            flops = 2.0 * m * n * kz * z
            out[(name, p)] = (launch_time(m, n, z, kz, splits, st, k_slice), flops, kind)
    return out


def sums(pred):
    s = {}
    for (name, p), (t, f, kind) in pred.items():
        key = p if (kind == 'conv' and not name.startswith('head')) else f"{kind if kind == 'upconv' else 'head'} {p}"
        s[key] = s.get(key, 0) + t
    return s


def main():
    global ETA
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument('--calibrate', nargs=2, metavar=('CONV_JSON', 'UPCONV_JSON'),
                    default=[os.path.join(here, 'calibration', f) for f in ('a57c5f0_conv2d.json', 'a57c5f0_upconv2d.json')],
                    help='sass_loop.py JSON of the measured (a57c5f0) conv2d.o and upconv2d.o (default: bench/calibration/)')
    ap.add_argument('--predict', nargs=2, metavar=('CONV_JSON', 'UPCONV_JSON'),
                    help='sass_loop.py JSON of the kernels to predict')
    ap.add_argument('--json', help='write predictions here')
    a = ap.parse_args()
    old = [json.load(open(f)) for f in a.calibrate]
    # Fit η: least squares on the log of the three pass sums.
    best = None
    for i in range(1, 400):
        ETA = i / 400
        s = sums(predict(old[0], old[1], 'fp32', 'old'))
        err = sum(math.log(s[p] * 1e3 / MEASURED[p]) ** 2 for p in MEASURED)
        if best is None or err < best[0]:
            best = (err, ETA)
    ETA = best[1]
    pred_old = predict(old[0], old[1], 'fp32', 'old')
    s = sums(pred_old)
    print(f"calibration (H200, 2026-11-26, first FP32 kernels of a57c5f0): issue efficiency eta = {ETA:.3f}")
    print(f"{'3x3 pass':10s} {'measured ms':>12s} {'model ms':>9s} {'model/meas':>10s}   per-layer TFLOP/s model (measured range)")
    for p in MEASURED:
        rates = [f / t / 1e12 for (n, q), (t, f, kind) in pred_old.items() if q == p and kind == 'conv' and not n.startswith('head')]
        lo, hi = MEASURED_RATES[p]
        inside = sum(1 for r in rates if 0.7 * lo <= r <= 1.3 * hi)
        print(f"{p:10s} {MEASURED[p]:12.1f} {s[p] * 1e3:9.1f} {s[p] * 1e3 / MEASURED[p]:10.2f}   {min(rates):.1f}-{max(rates):.1f} "
              f"({lo}-{hi}; {inside} of {len(rates)} layers within ±30 % of the range)")
    print(f"up-conv fwd/data/weight: model {s['upconv forward']*1e3:.2f}/{s['upconv data']*1e3:.2f}/{s['upconv weight']*1e3:.2f} ms,"
          f" measured 0.84/1.25/1.67")
    if not a.predict:
        return
    new = [json.load(open(f)) for f in a.predict]
    # The step's non-GEMM ops (pool, crop-concat, loss, SGD, ReLU masks, bias gradients), as the
    # H200 measured them: the step less the GEMM passes. With the decoder's convolutions reading
    # skip and up in place, the crop-concat passes (0.30 + 0.39 ms measured) are gone and the
    # zeroing of the skip gradients' borders (~70 MB of writes, ~0.02 ms) comes in.
    other_ms = 135.9 - 129.9 - 3.76 - 0.423
    if fused_concat(new[0]):
        other_ms += -0.30 - 0.39 + 0.02
    results = {}
    print(f"\npredictions for {a.predict[0]} (paper configuration, training step = all passes + {other_ms:.1f} ms of other ops)")
    print(f"{'precision':9s} {'fwd':>7s} {'data':>7s} {'weight':>7s} {'upconv':>7s} {'head':>6s} {'step ms':>8s} {'forward-only ms':>16s}")
    for prec in ('fp32', 'tf32', 'bf16'):
        pred = predict(new[0], new[1], prec, prec)
        s = sums(pred)
        up = s['upconv forward'] + s['upconv data'] + s['upconv weight']
        head = s['head forward'] + s['head data'] + s['head weight']
        step = (s['forward'] + s['data'] + s['weight'] + up + head) * 1e3 + other_ms
        fwd_only = (s['forward'] + s['upconv forward'] + s['head forward']) * 1e3
        print(f"{prec:9s} {s['forward']*1e3:7.1f} {s['data']*1e3:7.1f} {s['weight']*1e3:7.1f} {up*1e3:7.2f} {head*1e3:6.2f} "
              f"{step:8.1f} {fwd_only:16.1f}")
        results[prec] = dict(step_ms=step, forward_ms=fwd_only, layers={f"{n} {p}": t * 1e3 for (n, p), (t, f, k) in pred.items()})
    if a.json:
        json.dump(dict(eta=ETA, r_hmma=R_HMMA, predictions=results), open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
