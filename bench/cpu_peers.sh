#!/usr/bin/env bash
# bench/cpu_peers.sh — every CPU number of issue 17 in one run, ours beside Debian's PyTorch 1.13
# and the current PyTorch from PyPI, on this machine, with its lscpu. Meant for a quiet machine:
# it takes ~25 minutes (plus 30 with --with-15min), and timings taken while other work runs are
# not results.
#
#   bench/cpu_peers.sh OUTDIR [--threads N] [--with-15min]
#
# OUTDIR receives machine.txt (lscpu, load before and after) and, per stage, the program's table
# (.txt) and JSON:
#   1. step_cpu     the train_em CPU configuration (base 16, tile 316): forward and training step,
#                   ours and both PyTorch, alternated over 3 rounds (targets: ours/PyTorch 2.x
#                   <= 0.6 for both); then step_cpu_paired: the same against the current PyTorch
#                   with the steps paired one by one (step --interleave, 3 rounds of 30 pairs), the
#                   ratio per pair (both sides meet the same stretch of a drifting host)
#   2. step_cpu_avx2  the same with both sides restricted to AVX2 — our kernels by --cpu-isa,
#                   PyTorch's ATen and oneDNN by ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA — the
#                   stand-in for an AVX2-only CPU (until 2026-12-03 only our side was restricted,
#                   which compared our AVX2 with PyTorch's AVX-512), separate runs and paired;
#                   skipped without AVX-512
#   3. step_paper   the paper configuration (base 64, tile 572; target <= 0.8)
#   4. bench_ops    every operator of the CPU configuration, GFLOP/s and fraction of the peak of
#                   the vector width in use (and a second run at avx2 where AVX-512 exists)
#   5. cpu_levels   our convolution passes at each instruction-set level, one thread, process CPU
#                   time, alternated (the A/B that kernel work is judged by)
#   6. with --with-15min: training steps in 15 minutes, train_em (its CPU recipe, augmentation
#                   and all) against PyTorch's training step in a loop for 900 s (no augmentation:
#                   favours PyTorch). Target: ours >= 1.4 × PyTorch's.
# The build is the portable default (-march not set): our kernels pick their level at run time.
set -euo pipefail

out=""
threads=2
long=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --with-15min) long=1; shift ;;
    -*) echo "cpu_peers: unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
[ -n "$out" ] || { echo "usage: bench/cpu_peers.sh OUTDIR [--threads N] [--with-15min]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${UNET_BENCH_BUILD:-$root/build-bench}"
mkdir -p "$out"

echo "[cpu_peers] building $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNET_BUILD_TESTS=OFF \
  -DUNET_GPU_COMPILE_CHECK=OFF >/dev/null
ninja -C "$build" step bench_ops cpu_levels train_em >/dev/null
venv_python="$("$root/bench/pytorch_venv.sh" | tail -1)"
pythons=(--python /usr/bin/python3 --python "$venv_python")

{ lscpu; echo; echo "load before: $(cat /proc/loadavg)"; } >"$out/machine.txt"
run() {  # name, command...: tee the table, keep going if one stage fails
  local name="$1"; shift
  echo "[cpu_peers] $name: $*"
  "$@" 2>&1 | tee "$out/$name.txt" || echo "[cpu_peers] $name failed" | tee -a "$out/$name.txt"
}
has_avx512=0
grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && has_avx512=1

run step_cpu "$build/bench/step" --config cpu --threads "$threads" --vs-pytorch "${pythons[@]}" --rounds 3 \
  --iterations 10 --warmup 3 --json "$out/step_cpu.json"
run step_cpu_paired "$build/bench/step" --config cpu --threads "$threads" --vs-pytorch --interleave \
  --python "$venv_python" --rounds 3 --iterations 30 --warmup 3 --json "$out/step_cpu_paired.json"
if [ "$has_avx512" = 1 ]; then
  run step_cpu_avx2 env ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 "$build/bench/step" --config cpu \
    --threads "$threads" --cpu-isa avx2 --vs-pytorch --python "$venv_python" --rounds 3 --iterations 10 --warmup 3 \
    --json "$out/step_cpu_avx2.json"
  run step_cpu_avx2_paired env ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 "$build/bench/step" --config cpu \
    --threads "$threads" --cpu-isa avx2 --vs-pytorch --interleave --python "$venv_python" --rounds 3 \
    --iterations 30 --warmup 3 --json "$out/step_cpu_avx2_paired.json"
fi
run step_paper "$build/bench/step" --config paper --threads "$threads" --vs-pytorch "${pythons[@]}" \
  --iterations 3 --warmup 1 --json "$out/step_paper.json"
run bench_ops "$build/bench/bench_ops" --device cpu --base-channels 16 --tile 316 --threads "$threads" --repeats 9 \
  --json "$out/bench_ops.json"
if [ "$has_avx512" = 1 ]; then
  run bench_ops_avx2 "$build/bench/bench_ops" --device cpu --base-channels 16 --tile 316 --threads "$threads" \
    --repeats 9 --cpu-isa avx2 --json "$out/bench_ops_avx2.json"
fi
run cpu_levels "$build/bench/cpu_levels" --rounds 15 --json "$out/cpu_levels.json"
if [ "$long" = 1 ]; then
  run train_em_15min "$build/examples/train_em" --threads "$threads" --minutes 15 --out "$out/train_em"
  run pytorch_15min "$venv_python" "$root/bench/step_pytorch.py" --base 16 --depth 4 --tile 316 --threads "$threads" \
    --warmup 3 --train-seconds 900
  ours=$(grep -o '[0-9]* steps in' "$out/train_em_15min.txt" | tail -1 | cut -d' ' -f1)
  theirs=$(grep -o '"steps": [0-9]*' "$out/pytorch_15min.txt" | cut -d' ' -f2)
  [ -n "$ours" ] && [ -n "$theirs" ] &&
    echo "steps in 15 minutes: unetcore $ours, PyTorch $theirs, ratio $(python3 -c "print(round($ours / $theirs, 2))")" |
    tee "$out/steps_15min.txt"
fi
echo "load after: $(cat /proc/loadavg)" >>"$out/machine.txt"
echo "[cpu_peers] done: $out"
