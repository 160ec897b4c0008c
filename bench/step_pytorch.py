#!/usr/bin/env python3
"""bench/step_pytorch.py — the PyTorch half of bench/step --vs-pytorch: times the same U-Net
(bench/unet_torch.py: valid 3x3 convs + ReLU, max-pool, ConvTranspose2d(2, stride 2), centre crop
+ cat, 1x1 head, dropout off) on the same work: an inference forward under no_grad, and a full
training step (forward, weighted-mean cross-entropy, backward, SGD momentum 0.99). Median over
--iterations after --warmup. Writes JSON ({"torch", "results": [{mode, forward_ms, train_ms,
peak_mb, iterations}]}).

--serve (CPU): the PyTorch side of bench/step --interleave. Builds the model, warms up, prints one
JSON line ({"ready", "torch", "threads", "cpu_capability"}), then answers each line read from
stdin — "forward" (one inference forward under no_grad) or "train" (one training step) — with its
wall time in milliseconds on a line of its own; "peak" answers ru_maxrss in MiB; end of input
ends it. The caller alternates its own steps with these, so both sides are timed within the same
second of the host's life.

CPU: torch.set_num_threads(--threads), one result (mode "cpu"). CUDA: eager with cuDNN, one
result per --modes entry: "fp32" (TF32 off), "tf32" (TF32 on, PyTorch's default for
convolutions), "bf16" (automatic mixed precision: autocast to bfloat16, FP32 weights and loss,
channels-last tensors, no loss scaling: bf16 has FP32's range). cudnn.benchmark is on so cuDNN
picks its fastest algorithms during the warm-up.
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from unet_torch import UNetTorch, output_size, weighted_mean_xent  # noqa: E402


def median(v):
    v = sorted(v)
    n = len(v)
    return 0.0 if n == 0 else (v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2]))


def time_mode(args, device, mode):
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
        torch.backends.cudnn.allow_tf32 = mode != "fp32"
        torch.backends.cudnn.benchmark = True
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(1)
    model = UNetTorch(1, 2, args.base, args.depth).to(device)
    amp = cuda and mode == "bf16"
    if amp:
        model = model.to(memory_format=torch.channels_last)
    o = output_size(args.tile, args.depth)
    if o <= 0:
        sys.exit(f"step_pytorch: tile {args.tile} is not valid for depth {args.depth}")
    x = torch.rand(1, 1, args.tile, args.tile, device=device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)

    def run(inp):
        if amp:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return model(inp).float()
        return model(inp)
    labels = (torch.rand(1, o, o, device=device) < 0.5).long()
    weights = 0.5 + torch.rand(1, o, o, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.99)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    fwd, train = [], []
    model.eval()
    with torch.no_grad():
        for i in range(args.warmup + args.iterations):
            sync()
            t0 = time.perf_counter()
            run(x)
            sync()
            if i >= args.warmup:
                fwd.append((time.perf_counter() - t0) * 1e3)
    model.train()
    for i in range(args.warmup + args.iterations):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = weighted_mean_xent(run(x), labels, weights)
        loss.backward()
        opt.step()
        sync()
        if i >= args.warmup:
            train.append((time.perf_counter() - t0) * 1e3)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 1048576.0
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return {"mode": mode, "forward_ms": median(fwd), "train_ms": median(train), "peak_mb": peak,
            "iterations": args.iterations}


def cpu_steps(args):
    """The model, fixed random input and targets of the CPU loops (steps_in, serve), and two
    functions: an inference forward under no_grad, and a training step (forward, weighted-mean
    loss, backward, SGD momentum 0.99)."""
    torch.manual_seed(1)
    model = UNetTorch(1, 2, args.base, args.depth)
    o = output_size(args.tile, args.depth)
    if o <= 0:
        sys.exit(f"step_pytorch: tile {args.tile} is not valid for depth {args.depth}")
    x = torch.rand(1, 1, args.tile, args.tile)
    labels = (torch.rand(1, o, o) < 0.5).long()
    weights = 0.5 + torch.rand(1, o, o)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.99)

    def forward():
        model.eval()
        with torch.no_grad():
            model(x)

    def train():
        model.train()
        opt.zero_grad(set_to_none=False)
        weighted_mean_xent(model(x), labels, weights).backward()
        opt.step()
    return forward, train


def steps_in(args, seconds):
    """Training steps (forward, weighted-mean loss, backward, SGD momentum 0.99) that fit into
    `seconds` of wall time, after --warmup steps: the PyTorch side of "steps in 15 minutes"
    (bench/cpu_peers.sh). Fixed random input, no augmentation, no validation: a lower bound on the
    work train_em does per step, so the comparison favours PyTorch."""
    _, step = cpu_steps(args)
    for _ in range(args.warmup):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    elapsed = time.perf_counter() - t0
    return {"steps": n, "seconds": elapsed, "s_per_step": elapsed / max(n, 1)}


def serve(args):
    """--serve: one step at a time on request (see the top)."""
    forward, train = cpu_steps(args)
    for _ in range(args.warmup):
        forward()
        train()
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "cpu_capability": cpu_capability()}), flush=True)
    work = {"forward": forward, "train": train}
    for line in sys.stdin:
        what = line.strip()
        if what == "peak":
            print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0:.1f}", flush=True)
            continue
        if what not in work:
            sys.exit(f"step_pytorch --serve: unknown request '{what}' (forward, train or peak)")
        t0 = time.perf_counter()
        work[what]()
        print(f"{(time.perf_counter() - t0) * 1e3:.4f}", flush=True)


def cpu_capability():
    """The vector code PyTorch's own CPU kernels run (ATen's dispatch: DEFAULT, AVX2, AVX512),
    and whether oneDNN (mkldnn) runs the convolutions; PyTorch 1.13 has no query for the former."""
    cap = "?"
    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    if get is not None:
        cap = get()
    return f"{cap}, oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}"


def main():
    ap = argparse.ArgumentParser(description="PyTorch side of bench/step")
    ap.add_argument("--base", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--tile", type=int, default=572)
    ap.add_argument("--name", default="paper")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", help="write results here (default: stdout)")
    ap.add_argument("--modes", default="fp32,tf32,bf16", help="CUDA: comma list of fp32, tf32, bf16")
    ap.add_argument("--train-seconds", type=float, default=0,
                    help="instead: count the CPU training steps that fit into this many seconds")
    ap.add_argument("--serve", action="store_true",
                    help="instead: CPU, time one forward or training step per request read from stdin (bench/step --interleave)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.serve:
        if args.device != "cpu":
            sys.exit("step_pytorch: --serve times the CPU only")
        serve(args)
        return
    if args.train_seconds > 0:
        r = steps_in(args, args.train_seconds)
        r.update({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_capability": cpu_capability()})
        print(json.dumps(r))
        print(f"step_pytorch: {r['steps']} training steps in {r['seconds']:.0f} s ({r['s_per_step']:.3f} s/step), "
              f"torch {r['torch']}, {r['threads']} threads", file=sys.stderr)
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("step_pytorch: this torch has no CUDA device")
    modes = args.modes.split(",") if device.type == "cuda" else ["cpu"]
    for m in modes if device.type == "cuda" else []:
        if m not in ("fp32", "tf32", "bf16"):
            sys.exit(f"step_pytorch: mode '{m}' is not one of fp32, tf32, bf16")
    out = {"torch": torch.__version__, "config": args.name, "threads": torch.get_num_threads(),
           "cpu_capability": cpu_capability(), "results": [time_mode(args, device, m) for m in modes]}
    text = json.dumps(out, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    for r in out["results"]:
        print(f"step_pytorch: {args.name} {r['mode']}: forward {r['forward_ms']:.1f} ms, "
              f"train step {r['train_ms']:.1f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
