#!/usr/bin/env bash
# bench/pytorch_venv.sh — makes (or reuses) a Python virtual environment with a current PyTorch
# from PyPI, the peer that bench/step --vs-pytorch and bench/unet_torch.py are timed against
# beside Debian's python3-torch 1.13. Used only for benchmarks: the library, its tests and CI
# never need it.
#
#   bench/pytorch_venv.sh [DIR]        # default DIR: $UNET_TORCH_VENV or ~/.cache/unetcore/pytorch-venv
#   UNET_TORCH_VERSION=2.15.0 bench/pytorch_venv.sh   # pin a version (default: the newest on PyPI)
#
# Prints the interpreter's path as its last line (for `bench/step --vs-pytorch --python ...`).
# PyPI's Linux x86-64 torch wheel is the CUDA build: pip also brings NVIDIA's CUDA libraries
# (a few GB, once). PyTorch runs on the CPU without a GPU all the same, with its oneDNN kernels
# for the CPU it finds (AVX-512, AMX, AVX2), which is the point of the comparison.
set -euo pipefail

dir="${1:-${UNET_TORCH_VENV:-$HOME/.cache/unetcore/pytorch-venv}}"
# Debian's interpreter: the venv then sits beside the system's torch 1.13 (same Python), and no
# pyenv shim decides which Python the venv gets.
base_python="${UNET_VENV_BASE_PYTHON:-/usr/bin/python3}"
spec="torch${UNET_TORCH_VERSION:+==$UNET_TORCH_VERSION}"

if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import torch' >/dev/null 2>&1 && [ -z "${UNET_TORCH_VERSION:-}" ]; then
  echo "[pytorch-venv] reusing $dir (torch $("$dir/bin/python" -c 'import torch; print(torch.__version__)'))" >&2
else
  if ! "$base_python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "[pytorch-venv] $base_python cannot make virtual environments: apt-get install python3-venv" >&2
    exit 1
  fi
  echo "[pytorch-venv] creating $dir with $spec from PyPI (several GB the first time)" >&2
  "$base_python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip >&2
  "$dir/bin/python" -m pip install --quiet "$spec" numpy >&2
fi
"$dir/bin/python" -c 'import torch; print("[pytorch-venv] torch", torch.__version__, "threads", torch.get_num_threads(), "cpu capability", torch.backends.cpu.get_cpu_capability())' >&2
echo "$dir/bin/python"
