#!/bin/sh
# tests/bench/step_interleave.sh PYTHON STEP OUT — the plumbing of `bench/step --vs-pytorch
# --interleave` (bench/step_peer.h and bench/step_pytorch.py --serve), not its timings: a short run
# against PYTHON's torch must pair every step with a PyTorch step, and the table's medians and the
# pair ratios in the JSON must be made of those pairs. Exit 77 (skipped) when PYTHON has no torch.
set -eu
py=$1 step=$2 out=$3
"$py" -c 'import torch' >/dev/null 2>&1 || exit 77
mkdir -p "$out"
rm -f "$out/step.json"
"$step" --config cpu --threads 1 --iterations 3 --warmup 1 --vs-pytorch --interleave --python "$py" --json "$out/step.json"
"$py" - "$out/step.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
def median(v):
    v = sorted(v); n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])
runs = j["interleaved"]
assert len(runs) == 1, f"one interleaved run expected, got {len(runs)}"
run = runs[0]
rows = j["results"]
ours = [r for r in rows if r["engine"] == "unetcore"]
theirs = [r for r in rows if r["engine"].startswith("pytorch ")]
assert len(ours) == 1 and len(theirs) == 1, f"one row each expected: {[r['engine'] for r in rows]}"
for what, key in (("train", "train_ms"), ("forward", "forward_ms")):
    pairs = run[what]["pairs"]
    assert len(pairs) == 3, f"{what}: 3 pairs expected, got {len(pairs)}"
    assert all(a > 0 and b > 0 for a, b in pairs), f"{what}: a step took no time: {pairs}"
    ratios = sorted(a / b for a, b in pairs)
    assert all(abs(x - y) <= 1e-9 * y for x, y in zip(ratios, run[what]["ratios"])), f"{what}: ratios {run[what]['ratios']} are not ours / theirs of {pairs}"
    assert abs(ours[0][key] - median([a for a, _ in pairs])) <= 1e-9 * ours[0][key], f"{what}: our row is not the median of our side"
    assert abs(theirs[0][key] - median([b for _, b in pairs])) <= 1e-9 * theirs[0][key], f"{what}: PyTorch's row is not the median of its side"
assert theirs[0]["peak_mb"] > 0 and "interleaved" in theirs[0]["cpu_capability"]
print("step --interleave: pairs and medians consistent:", run["train"]["ratios"])
PY
