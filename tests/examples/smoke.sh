#!/bin/sh
# tests/examples/smoke.sh — the example programs end to end, as a user runs them (CTest
# examples_smoke): train_em trains a tiny model on the shipped ISBI data for a few steps and
# writes everything it promises; a resume continues at the saved step; a bad tile size is refused
# naming the valid ones; export_model keeps only the weights; segment applies the trained model
# to a slice and to a 3-page stack (a 3-page stack out), refuses two inputs that would write the
# same file, and finds the shipped model by name; train_em trains on a folder of stacks;
# evaluate scores train_em's probability maps and reports the same challenge measures as
# train_em's metrics.json, and scores a stack page by page.
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

"$bin/export_model" --checkpoint "$work/t/model.safetensors" --out "$work/m.safetensors" > "$work/export.txt"
grep -q "iterate\." "$work/m.safetensors" && fail "export_model kept the SGD iterate"
grep -q "velocity\." "$work/m.safetensors" && fail "export_model kept the momentum"

# A 3-page stack in, a 3-page stack out.
stack=tests/data/isbi-stack/train/images/isbi-20-22.tif
"$bin/segment" --model "$work/m.safetensors" --input "$stack" --out "$work/st" --device cpu > "$work/stack.txt"
grep -q "3 page(s)" "$work/stack.txt" || fail "segment did not count the stack's 3 pages: $(cat "$work/stack.txt")"
test -s "$work/st/isbi-20-22.tif" || fail "segment wrote no stack: $(ls "$work/st")"
test -s "$work/st/isbi-20-22_overlay.tif" || fail "segment wrote no overlay stack: $(ls "$work/st")"
"$bin/evaluate" --pred "$work/st" --truth tests/data/isbi-stack/train/labels --no-warping --json "$work/st.json" > /dev/null 2> "$work/st_eval.txt" ||
  fail "evaluate refused the stack: $(cat "$work/st_eval.txt")"
grep -q 'isbi-20-22_p2' "$work/st.json" || fail "evaluate did not score the stack's 3 pages: $(head -c 400 "$work/st.json")"
# Two files of the same stem would overwrite each other's outputs: refused before any work.
mkdir -p "$work/dup"
cp data/isbi2012/train/images/22.png "$work/dup/a.png"
cp "$stack" "$work/dup/a.tif"
if "$bin/segment" --model "$work/m.safetensors" --input "$work/dup" --out "$work/dup_out" > /dev/null 2> "$work/dup.txt"; then
  fail "segment accepted two inputs named a"
fi
grep -q "same outputs" "$work/dup.txt" || fail "the duplicate-name refusal does not say why: $(cat "$work/dup.txt")"
# Training data in stacks: every page is a slice (the last one validates here).
"$bin/train_em" $tiny --data tests/data/isbi-stack --first-val 2 --iterations 2 --out "$work/ts" > "$work/ts.txt" ||
  fail "train_em refused a training folder of stacks: $(cat "$work/ts.txt")"
grep -q "2 training slices (isbi-20-22_p0..isbi-20-22_p1), 1 validation slices (isbi-20-22_p2..isbi-20-22_p2)" "$work/ts.txt" ||
  fail "train_em did not split the stack's pages: $(grep slices "$work/ts.txt")"
test -s "$work/ts/val/isbi-20-22_p2.tif" || fail "train_em wrote no map for the validation page: $(ls "$work/ts/val")"
# The shipped model by name (the default).
"$bin/segment" --input "$stack" --out "$work/named" --device cpu > "$work/named.txt" ||
  fail "segment could not use the shipped model: $(cat "$work/named.txt")"
grep -q "isbi2012-em" "$work/named.txt" || fail "segment did not use the shipped model isbi2012-em"

"$bin/evaluate" --pred "$work/t/val" --truth data/isbi2012/train/labels --json "$work/eval.json" > /dev/null 2>&1
value() { tr ',{}' '\n\n\n' < "$1" | grep "\"$2\"" | head -1 | cut -d: -f2; }
for key in pixel_error rand_error vinfo_error vrand_thinned_error vinfo_thinned_error; do
  [ -n "$(value "$work/eval.json" $key)" ] || fail "evaluate wrote no $key"
  [ "$(value "$work/eval.json" $key)" = "$(value "$work/t/metrics.json" $key)" ] ||
    fail "evaluate's $key $(value "$work/eval.json" $key) differs from train_em's $(value "$work/t/metrics.json" $key)"
done
grep -q "V_rand error (thinned)" "$work/train.txt" || fail "train_em did not print the thinned V_rand error"
echo "examples_smoke: ok"
