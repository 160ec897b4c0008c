#!/bin/sh
# tests/examples/smoke.sh — the example programs end to end, as a user runs them (CTest
# examples_smoke): train_em trains a tiny model on the shipped ISBI data for a few steps and
# writes everything it promises; a resume continues at the saved step; a bad tile size is refused
# naming the valid ones; segment applies the trained model to a slice; evaluate scores train_em's
# probability maps and reports the same challenge measures as train_em's metrics.json.
# Usage: smoke.sh BIN_DIR WORK_DIR
set -eu
bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "examples_smoke: $*" >&2; exit 1; }
base="--device cpu --base-channels 2 --threads 2 --no-tta"
tiny="$base --tile 188"

"$bin/train_em" $tiny --out "$work/t" --iterations 4 --checkpoint-every 2 --cooldown 0.5 --input-norm data > "$work/train.txt"
for f in model.safetensors metrics.json loss.png log.jsonl val/20.tif val/24.tif val/20_overlay.png; do
  test -s "$work/t/$f" || fail "train_em did not write $f"
done
grep -q '"rand_error"' "$work/t/metrics.json" || fail "metrics.json has no rand_error"
[ "$(grep -c '"loss"' "$work/t/log.jsonl")" -eq 4 ] || fail "log.jsonl should hold 4 loss lines"
grep -q "4 steps in" "$work/train.txt" || fail "train_em did not report its 4 steps"
grep -q "falling to 0 over the last 50 % of the run" "$work/train.txt" || fail "train_em did not state its schedule"
grep -q "weights averaged with decay 0.998" "$work/train.txt" || fail "train_em did not state its weight averaging"
grep -q "the last SGD iterate (weights not averaged)" "$work/train.txt" || fail "train_em did not score the iterate beside the average"
grep -q "iterate\." "$work/t/model.safetensors" || fail "model.safetensors holds no SGD iterate to resume from"
grep -q "input standardised with the training slices' mean 0\.[0-9]* and deviation 0\.[0-9]*" "$work/train.txt" ||
  fail "train_em did not state its input standardisation"
grep -q 'input_std' "$work/t/model.safetensors" || fail "the model's configuration does not carry its input standardisation"

"$bin/train_em" $tiny --out "$work/r" --iterations 6 --cooldown 0.5 --input-norm data --resume "$work/t/model.safetensors" > "$work/resume.txt"
grep -q "resumed from .* at step 4" "$work/resume.txt" || fail "resume did not continue at step 4"
[ "$(grep -c '"loss"' "$work/r/log.jsonl")" -eq 2 ] || fail "the resumed run should take 2 more steps"

if "$bin/train_em" $base --out "$work/bad" --iterations 1 --tile 190 > /dev/null 2> "$work/bad.txt"; then
  fail "train_em accepted the invalid tile 190"
fi
grep -q "188" "$work/bad.txt" || fail "the invalid-tile message does not name the nearest valid size: $(cat "$work/bad.txt")"
grep -q "convolutions in fp32" "$work/train.txt" || fail "train_em did not state its precision"
if "$bin/train_em" $base --out "$work/bad" --iterations 1 --precision bf16 > /dev/null 2> "$work/badp.txt"; then
  fail "train_em accepted --precision bf16 on the CPU"
fi
grep -q "fp32 only" "$work/badp.txt" || fail "the CPU precision refusal does not say why: $(cat "$work/badp.txt")"

"$bin/segment" --model "$work/t/model.safetensors" --input data/isbi2012/train/images/22.png --out "$work/s" --device cpu > /dev/null
ls "$work/s" | grep -q '^22.*\.tif$' || fail "segment wrote no probability map: $(ls "$work/s")"

"$bin/evaluate" --pred "$work/t/val" --truth data/isbi2012/train/labels --json "$work/eval.json" > /dev/null 2>&1
value() { tr ',{}' '\n\n\n' < "$1" | grep "\"$2\"" | head -1 | cut -d: -f2; }
for key in pixel_error rand_error vinfo_error vrand_thinned_error vinfo_thinned_error; do
  [ -n "$(value "$work/eval.json" $key)" ] || fail "evaluate wrote no $key"
  [ "$(value "$work/eval.json" $key)" = "$(value "$work/t/metrics.json" $key)" ] ||
    fail "evaluate's $key $(value "$work/eval.json" $key) differs from train_em's $(value "$work/t/metrics.json" $key)"
done
grep -q "V_rand error (thinned)" "$work/train.txt" || fail "train_em did not print the thinned V_rand error"
echo "examples_smoke: ok"
