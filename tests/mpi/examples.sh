#!/bin/sh
# tests/mpi/examples.sh — the programs under mpirun, as a user runs them (CTest mpi_examples):
#   * train_em on 2 ranks with --batch 1 trains one model: its validation maps (a function of the
#     weights alone) equal, byte for byte, those of one process with --batch 2 --micro-batch 1;
#     rank 0 alone wrote the files; resume on 2 ranks continues, on 1 process it is refused;
#   * without --threads, the ranks share the node's cores;
#   * segment on 2 ranks writes exactly the files of one process, byte for byte.
# Usage: examples.sh BIN_DIR WORK_DIR MPIRUN...
set -eu
bin=$1; work=$2; shift 2
rm -rf "$work"; mkdir -p "$work"
fail() { echo "mpi_examples: $*" >&2; exit 1; }
tiny="--device cpu --base-channels 2 --threads 1 --tile 188 --no-tta --weight-average 0 --checkpoint-every 2"

"$@" -np 2 "$bin/train_em" $tiny --iterations 3 --batch 1 --out "$work/ranks" > "$work/ranks.txt" 2>&1 ||
  fail "train_em on 2 ranks failed: $(cat "$work/ranks.txt")"
"$bin/train_em" $tiny --iterations 3 --batch 2 --micro-batch 1 --out "$work/single" > "$work/single.txt" 2>&1 ||
  fail "train_em --batch 2 --micro-batch 1 failed: $(cat "$work/single.txt")"
grep -q "batch 1 per rank x 2 ranks = 2 tiles per step" "$work/ranks.txt" || fail "train_em did not state the global batch"
[ "$(grep -c '3 steps in' "$work/ranks.txt")" -eq 1 ] || fail "not exactly one rank reported the run: $(cat "$work/ranks.txt")"
[ "$(grep -c '"loss"' "$work/ranks/log.jsonl")" -eq 3 ] || fail "log.jsonl should hold 3 loss lines (rank 0's only)"
for f in 20.tif 21.tif 22.tif 23.tif 24.tif; do
  cmp -s "$work/ranks/val/$f" "$work/single/val/$f" || fail "val/$f of 2 ranks differs from one process's"
done
# Every step's loss, as logged, is the same.
losses() { grep -o '"loss":[^,}]*' "$1"; }
[ "$(losses "$work/ranks/log.jsonl")" = "$(losses "$work/single/log.jsonl")" ] || fail "the logged losses differ"
grep -q '"gradient_sums_waited_ms"' "$work/ranks/log.jsonl" || fail "log.jsonl does not record the gradient sums"

# Without --threads, two ranks on one node share its cores (examples/job_cli.h).
share=$(( $(nproc) / 2 )); [ "$share" -ge 1 ] || share=1
"$@" -np 2 "$bin/train_em" --device cpu --base-channels 2 --tile 188 --no-tta --iterations 1 --out "$work/shared" \
  > "$work/shared.txt" 2>&1 || fail "train_em on 2 ranks without --threads failed: $(cat "$work/shared.txt")"
grep -q " $share CPU threads" "$work/shared.txt" || fail "2 ranks on $(nproc) cores did not take $share threads each: $(head -3 "$work/shared.txt")"

"$@" -np 2 "$bin/train_em" $tiny --batch 1 --iterations 4 --out "$work/resumed" --resume "$work/ranks/model.safetensors" \
  > "$work/resumed.txt" 2>&1 || fail "resume on 2 ranks failed: $(cat "$work/resumed.txt")"
grep -q "resumed from .* at step 3" "$work/resumed.txt" || fail "resume on 2 ranks did not continue at step 3"
if "$bin/train_em" $tiny --batch 1 --iterations 4 --out "$work/refused" --resume "$work/ranks/model.safetensors" \
  > /dev/null 2> "$work/refused.txt"; then
  fail "a 2-rank checkpoint was resumed by one process"
fi
grep -q "trained on 2 ranks but this run has 1 process" "$work/refused.txt" || fail "no clear refusal: $(cat "$work/refused.txt")"

mkdir -p "$work/images"
cp data/isbi2012/train/images/2[0-4].png "$work/images/"
"$bin/segment" --model "$work/ranks/model.safetensors" --input "$work/images" --out "$work/seg1" --device cpu > /dev/null
"$@" -np 2 "$bin/segment" --model "$work/ranks/model.safetensors" --input "$work/images" --out "$work/seg2" --device cpu \
  > "$work/seg2.txt" 2>&1 || fail "segment on 2 ranks failed: $(cat "$work/seg2.txt")"
[ "$(ls "$work/seg1" | wc -l)" -eq 10 ] || fail "one process wrote $(ls "$work/seg1" | wc -l) files, not 10"
diff -r "$work/seg1" "$work/seg2" > /dev/null || fail "segment on 2 ranks wrote other files than one process: $(diff -rq "$work/seg1" "$work/seg2")"
echo "mpi_examples: ok"
