#!/bin/sh
# tests/examples/cells_smoke.sh — the cell programs end to end on a generated Cell Tracking
# Challenge data set (CTest cells_smoke): train_cells trains a tiny model for a few steps on
# sequence 01 (8-bit, a partially annotated frame) and validates on sequence 02 (16-bit), writing
# everything it promises (gradient clipping at 1 by default, every step's gradient norm logged, the
# instance options chosen on the training frames and kept in the model); a resume continues at
# the saved step and keeps instance options given on the command line; segment --instances writes
# maskTTT.tif for a folder of raw frames with the model's own instance options; evaluate --cells
# scores them with the same SEG as train_cells' metrics.json; a bad frame name is refused.
# Usage: cells_smoke.sh BIN_DIR MAKE_SYNTHETIC_CTC WORK_DIR
set -eu
bin=$1
make_data=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "cells_smoke: $*" >&2; exit 1; }
tiny="--device cpu --base-channels 2 --threads 2 --tile 188"

"$make_data" "$work/data" > /dev/null
"$bin/train_cells" --data "$work/data" $tiny --out "$work/t" --iterations 4 --checkpoint-every 2 > "$work/train.txt"
for f in model.safetensors metrics.json loss.png log.jsonl val/02_RES/mask000.tif val/02_RES/mask001.tif \
         val/02_000.tif val/02_001_overlay.png targets/01_000.png targets/01_003.png; do
  test -s "$work/t/$f" || fail "train_cells did not write $f: $(cat "$work/train.txt")"
done
grep -q '"seg"' "$work/t/metrics.json" || fail "metrics.json has no seg"
[ "$(grep -c '"loss"' "$work/t/log.jsonl")" -eq 4 ] || fail "log.jsonl should hold 4 loss lines"
grep -q "4 training frames (01/000, 01/001, 01/002, 01/003), 2 validation frames (02/000, 02/001)" "$work/train.txt" ||
  fail "train_cells did not split sequence 01 / 02: $(cat "$work/train.txt")"
grep -q "16-bit" "$work/train.txt" || fail "train_cells did not notice the 16-bit frames"
grep -q "partially annotated training frames 01/003 (found by their labelled area) — masked" "$work/train.txt" ||
  fail "train_cells did not find the partially annotated frame"
grep -q "touching pairs separated by a border of radius 1 px" "$work/train.txt" || fail "train_cells did not state its separation border"
grep -q "SEG" "$work/train.txt" || fail "train_cells did not print SEG"
grep -q "gradient norm clipped at 1," "$work/train.txt" || fail "train_cells did not clip the gradient norm at 1 by default"
[ "$(grep -c '"grad_norm"' "$work/t/log.jsonl")" -eq 4 ] || fail "log.jsonl should hold every step's gradient norm"
grep -q "unetcore.instances" "$work/t/model.safetensors" || fail "the model does not carry its instance options"
# By default the threshold and core level are chosen on the training frames after training; the
# model file and metrics.json carry the choice (segment's SEG below equals metrics.json's only if
# segment used the chosen options from the model).
grep -q "instance options tried on the 4 training frames" "$work/train.txt" || fail "train_cells did not choose its instance options"
[ "$(grep -c '<- chosen' "$work/train.txt")" -eq 1 ] || fail "train_cells should mark exactly one choice"
# The chosen row: "threshold core-level SEG matched" (core "-" = plain components, stored as 0.0).
chosen_threshold=$(grep '<- chosen' "$work/train.txt" | awk '{print $1}')
chosen_core=$(grep '<- chosen' "$work/train.txt" | awk '{print $2 == "-" ? "0.0" : $2}')
for kept in "{\\\"threshold\\\":$chosen_threshold," "core_threshold\\\":$chosen_core,"; do
  grep -qF "$kept" "$work/t/model.safetensors" || fail "the model does not carry the chosen $kept"
done
grep -q '"instance_choice"' "$work/t/metrics.json" || fail "metrics.json does not keep the instance choice"

"$bin/train_cells" --data "$work/data" $tiny --out "$work/r" --iterations 6 --resume "$work/t/model.safetensors" --no-tta \
  --threshold 0.5 --core-threshold 0.95 > "$work/resume.txt"
grep -q "resumed from .* at step 4" "$work/resume.txt" || fail "resume did not continue at step 4"
grep -q "grown from cores of probability > 0.95" "$work/resume.txt" || fail "train_cells did not state how objects are grown"
if grep -q "instance options tried" "$work/resume.txt"; then fail "train_cells chose options that were given"; fi
grep -q 'core_threshold\\":0.95,' "$work/r/model.safetensors" || fail "the model does not carry the core threshold given"
[ "$(grep -c '"loss"' "$work/r/log.jsonl")" -eq 2 ] || fail "the resumed run should take 2 more steps"

"$bin/segment" --model "$work/t/model.safetensors" --input "$work/data/02" --out "$work/res" --instances --tta --device cpu > "$work/segment.txt"
for f in mask000.tif mask001.tif overlays/t000.png; do
  test -s "$work/res/$f" || fail "segment --instances did not write $f: $(ls -R "$work/res")"
done
"$bin/evaluate" --pred "$work/res" --truth "$work/data/02_GT" --json "$work/eval.json" > "$work/eval.txt" 2>&1 ||
  fail "evaluate failed: $(cat "$work/eval.txt")"
seg() { tr ',{}' '\n\n\n' < "$1" | grep '"seg"' | head -1 | cut -d: -f2 | tr -d ' '; }
[ -n "$(seg "$work/eval.json")" ] || fail "evaluate wrote no seg"
[ "$(seg "$work/eval.json")" = "$(seg "$work/t/metrics.json")" ] ||
  fail "evaluate's SEG $(seg "$work/eval.json") differs from train_cells' $(seg "$work/t/metrics.json")"

if "$bin/train_cells" --data "$work/data" $tiny --out "$work/bad" --iterations 1 --val-frames 999 > /dev/null 2> "$work/bad.txt"; then
  fail "train_cells accepted the unknown validation frame 999"
fi
grep -q "'999'" "$work/bad.txt" || fail "the message does not name the unknown frame: $(cat "$work/bad.txt")"
if "$bin/train_cells" --data "$work/data" $tiny --out "$work/bad" --iterations 1 --core-threshold high > /dev/null 2> "$work/bad.txt"; then
  fail "train_cells accepted --core-threshold high"
fi
grep -qF -e "--core-threshold must be 'auto' or a number" "$work/bad.txt" || fail "the message does not say what --core-threshold takes: $(cat "$work/bad.txt")"
echo "cells_smoke: ok"
