"""bench/unet_torch.py — the unetcore U-Net rebuilt in PyTorch, shared by bench/pytorch_parity.py
and bench/step_pytorch.py, plus a dependency-free safetensors reader/writer.

The module tree mirrors unetcore's parameter names exactly (down{l}.conv{1,2}.*, up{l}.upconv.*,
up{l}.conv{1,2}.*, head.*), so our safetensors weights load with load_state_dict as they are:
up-conv weights are already in ConvTranspose2d's [in, out, 2, 2] layout. Valid (unpadded) 3x3
convolutions + ReLU, 2x2 max-pool, ConvTranspose2d(2, stride 2), centre crop + concatenation
(skip first, as unetcore's crop_concat), a 1x1 head. Dropout is left out: parity and timing run
with it off (unetcore's eval mode / dropout 0). The input standardisation (x - input_mean) /
input_std comes first, as in unetcore (UNetConfig; "unetcore.model" in a checkpoint's metadata).
"""
import json
import struct

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3)
        self.conv2 = nn.Conv2d(cout, cout, 3)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UNetTorch(nn.Module):
    def __init__(self, in_channels=1, num_classes=2, base=64, depth=4, input_mean=0.0, input_std=1.0):
        super().__init__()
        self.depth = depth
        self.input_mean, self.input_std = input_mean, input_std
        cin, ch = in_channels, base
        for level in range(depth + 1):
            self.add_module(f"down{level}", DoubleConv(cin, ch))
            cin, ch = ch, ch * 2
        ch = cin  # channels at the bottom
        for level in range(depth):
            up = nn.Module()
            up.upconv = nn.ConvTranspose2d(ch, ch // 2, 2, stride=2)
            # Registered flat (up{l}.conv1) as unetcore names them.
            up.conv1 = nn.Conv2d(ch, ch // 2, 3)
            up.conv2 = nn.Conv2d(ch // 2, ch // 2, 3)
            self.add_module(f"up{level}", up)
            ch //= 2
        self.head = nn.Conv2d(ch, num_classes, 1)

    def forward(self, x):
        skips = []
        h = (x - self.input_mean) / self.input_std if (self.input_mean, self.input_std) != (0.0, 1.0) else x
        for level in range(self.depth):
            h = getattr(self, f"down{level}")(h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = getattr(self, f"down{self.depth}")(h)
        for i in range(self.depth):
            up = getattr(self, f"up{i}")
            u = up.upconv(h)
            s = skips[self.depth - 1 - i]
            oy = (s.shape[2] - u.shape[2]) // 2
            ox = (s.shape[3] - u.shape[3]) // 2
            s = s[:, :, oy:oy + u.shape[2], ox:ox + u.shape[3]]
            h = torch.cat([s, u], dim=1)
            h = F.relu(up.conv2(F.relu(up.conv1(h))))
        return self.head(h)


def weighted_mean_xent(logits, labels, weights):
    """unetcore's LossReduction::WeightedMean: sum w * (-log p_label) / sum w (0 if sum w == 0)."""
    nll = F.cross_entropy(logits, labels.long(), reduction="none")
    total = weights.sum()
    return (weights * nll).sum() / total if float(total) != 0.0 else (weights * nll).sum() * 0.0


def output_size(tile, depth):
    s = tile
    for _ in range(depth):
        s -= 4
        if s <= 0 or s % 2:
            return -1
        s //= 2
    s -= 4
    for _ in range(depth):
        s = 2 * s - 4
    return s


_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict). Format: u64 LE header length, JSON, data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(blob[base + begin:base + end], dtype=_DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta
