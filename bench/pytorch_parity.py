#!/usr/bin/env python3
"""bench/pytorch_parity.py — whole-network parity of unetcore against PyTorch.

Reads the file written by bench/parity_dump (weights, input, labels, pixel weights, and unetcore's
logits, weighted-mean loss and every parameter gradient), rebuilds the same U-Net in PyTorch
(bench/unet_torch.py), loads unetcore's weights into it, and redoes forward + loss + backward in
float64 (the reference) and in float32 (to show float32's own noise floor). Prints, per tensor,
the relative error  max|ours - ref| / max|ref|  and exits 1 if any exceeds the tolerance.

  bench/parity_dump --out DIR && /usr/bin/python3 bench/pytorch_parity.py DIR/parity.safetensors

Tolerance (default 1e-4) — why: unetcore computes in float32 (unit round-off u = 6e-8). A dot
product of length n has a worst-case relative error of about n·u and a typical one of about
sqrt(n)·u. The longest reductions here are the weight gradients, summed over batch × output
pixels (2 × ~100² = 2·10^4 terms: typical ~1e-5, worst ~1e-3), and the errors of ~15 layers
compound in the backward pass. Measuring against the tensor's largest magnitude (not per element)
keeps near-zero entries from dominating. 1e-4 sits an order of magnitude above the float32
PyTorch run's own error (printed alongside) and far below what a real bug (a wrong crop offset,
a transposed kernel, a missing bias gradient) produces: those give errors of order 1.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from unet_torch import UNetTorch, read_safetensors, weighted_mean_xent  # noqa: E402


def run(tensors, cfg, dtype, ties=None):
    model = UNetTorch(cfg["in_channels"], cfg["num_classes"], cfg["base_channels"], cfg["depth"],
                      cfg.get("input_mean", 0.0), cfg.get("input_std", 1.0)).to(dtype)
    if ties is not None:
        # Records, per ReLU'd convolution, min|pre-activation| / max|pre-activation|: a value near
        # float32's resolution means float32 and float64 may disagree on the ReLU's mask there,
        # which legitimately changes every gradient below that layer.
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Conv2d) and not name.startswith("head"):
                mod.register_forward_hook(
                    lambda m, i, o, name=name: ties.append(
                        (float(o.detach().abs().min() / o.detach().abs().max()), name)))
    state = {name: torch.from_numpy(tensors[name]).to(dtype) for name, _ in model.named_parameters()}
    model.load_state_dict(state, strict=True)
    x = torch.from_numpy(tensors["input"]).to(dtype)
    labels = torch.from_numpy(tensors["labels"]).long()
    weights = torch.from_numpy(tensors["weights"]).to(dtype)
    logits = model(x)
    loss = weighted_mean_xent(logits, labels, weights)
    loss.backward()
    out = {"logits": logits.detach().double().numpy(), "loss": loss.detach().double().numpy().reshape(1)}
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad.double().numpy()
    return out


def rel_error(a, ref):
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(a.astype(np.float64) - ref))) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="parity.safetensors written by bench/parity_dump")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--json", help="also write the per-tensor errors here")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    tensors, meta = read_safetensors(args.file)
    cfg = json.loads(meta["unetcore.model"])
    if cfg.get("padding", "valid") not in ("valid", "Valid", 0):
        sys.exit(f"pytorch_parity: only valid padding is modelled, the file has {cfg.get('padding')}")
    ties = []
    ref = run(tensors, cfg, torch.float64, ties)
    f32 = run(tensors, cfg, torch.float32)

    names = ["logits", "loss"] + [n for n in tensors if n.startswith("grad.")]
    print(f"pytorch_parity: {args.file}: base {cfg['base_channels']}, depth {cfg['depth']}, "
          f"{cfg['num_classes']} classes, input {list(tensors['input'].shape)}, torch {torch.__version__}")
    print(f"relative error = max|x - ref| / max|ref|, ref = PyTorch float64; tolerance {args.tolerance:g}")
    print(f"{'tensor':<28} {'shape':<18} {'unetcore f32':>13} {'torch f32':>11}")
    worst, failed, rows = 0.0, [], []
    for n in names:
        ours = tensors[n].reshape(ref[n].shape)
        e_ours, e_t32 = rel_error(ours, ref[n]), rel_error(f32[n], ref[n])
        worst = max(worst, e_ours)
        bad = not (e_ours <= args.tolerance)  # NaN fails too
        if bad:
            failed.append(n)
        rows.append({"tensor": n, "shape": list(ref[n].shape), "unetcore_f32": e_ours, "torch_f32": e_t32})
        print(f"{n:<28} {str(list(ref[n].shape)):<18} {e_ours:>13.3e} {e_t32:>11.3e}{'  FAIL' if bad else ''}")
    print(f"loss: unetcore {float(tensors['loss'][0]):.9g}, torch f64 {float(ref['loss'][0]):.9g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tolerance": args.tolerance, "worst": worst, "tensors": rows}, f, indent=1)
    tie, tie_layer = min(ties)
    print(f"closest ReLU tie: {tie_layer}, min|z|/max|z| = {tie:.2e} (float32 resolves ~1e-7)")
    if failed:
        if tie < 1e-6:
            print(f"pytorch_parity: note: {tie_layer} has a pre-activation within float32 rounding of 0; "
                  "a ReLU mask that differs there explains gradient errors in every layer below it. "
                  "Re-run parity_dump with another --seed to tell such a tie from a bug.")
        print(f"pytorch_parity: FAIL: {len(failed)} tensor(s) above {args.tolerance:g}: {', '.join(failed)}")
        return 1
    print(f"pytorch_parity: OK: {len(names)} tensors, worst relative error {worst:.3e} <= {args.tolerance:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
