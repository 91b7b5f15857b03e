#!/bin/sh
# Colour end to end: PNG class folders of 3 classes that differ only in hue
# (tests/hue_data.c) train a [3, 32, 32] model to 90% test accuracy in 3
# epochs, and nabla predict on the test images agrees with eval; the same
# images through a gray model stay near chance, since their gray copy
# carries no class.  Then per-channel normalisation and augmentation from
# the command line, and their bad settings.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
hue_data="$top_builddir/tests/hue_data"
models="$top_srcdir/tests/data/colour"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-colour.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

"$hue_data" "$tmp/hue" 100 30 || { echo "FAIL: hue_data" >&2; exit 1; }

# accuracy LOG: the test accuracy eval printed, as a fraction.
accuracy() { sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$1"; }

# 1. Colour: >= 90% in 3 epochs.
"$nabla" train "$models/hue.json" --data "$tmp/hue" --out "$tmp/colour" > "$tmp/train.log" 2>&1 ||
    bad "train the colour model: $(tail -n 2 "$tmp/train.log")"
"$nabla" eval "$models/hue.json" --data "$tmp/hue" --weights "$tmp/colour/weights.safetensors" \
    > "$tmp/eval.log" 2>&1 || bad "eval the colour model: $(tail -n 2 "$tmp/eval.log")"
acc=$(accuracy "$tmp/eval.log")
echo "colour model: test accuracy $acc"
awk -v a="$acc" 'BEGIN { exit !(a != "" && a >= 0.9) }' && ok ||
    bad "the colour model's test accuracy is ${acc:-missing}, not >= 0.9"

# 2. predict on every test image gives eval's answers: count its right ones.
right=0
total=0
for k in 0 1 2; do
    class=$(ls "$tmp/hue/test" | sed -n "$((k + 1))p")
    "$nabla" predict "$models/hue.json" --weights "$tmp/colour/weights.safetensors" \
        "$tmp/hue/test/$class"/*.png > "$tmp/predict.log" 2> "$tmp/err" ||
        bad "predict: $(head -c 300 "$tmp/err")"
    n=$(wc -l < "$tmp/predict.log")
    r=$(awk -v k="$k" '$2 == k' "$tmp/predict.log" | wc -l)
    total=$((total + n))
    right=$((right + r))
done
want=$(awk -v a="$acc" 'BEGIN { printf "%d", a * 90 + 0.5 }')
echo "predict: $right of $total right (eval: $want)"
[ "$total" -eq 90 ] && [ "$right" -eq "$want" ] && ok ||
    bad "predict got $right of $total right, eval $want of 90"

# 3. Gray: the mean of the channels carries no class.
"$nabla" train "$models/hue-gray.json" --data "$tmp/hue" --out "$tmp/gray" > "$tmp/train.log" 2>&1 ||
    bad "train the gray model: $(tail -n 2 "$tmp/train.log")"
"$nabla" eval "$models/hue-gray.json" --data "$tmp/hue" --weights "$tmp/gray/weights.safetensors" \
    > "$tmp/eval.log" 2>&1 || bad "eval the gray model"
acc=$(accuracy "$tmp/eval.log")
echo "gray model: test accuracy $acc"
awk -v a="$acc" 'BEGIN { exit !(a != "" && a < 0.5) }' && ok ||
    bad "the gray model's test accuracy is ${acc:-missing}, not near chance (1/3)"

# 4. Per-channel normalisation and augmentation in the model file train.
sed 's/"seed": 1}/"seed": 1, "normalize": {"mean": [0.1, 0.1, 0.1], "std": [0.2, 0.2, 0.25]}, "random_crop": {"padding": 2}, "hflip": 0.5}/' \
    "$models/hue.json" > "$tmp/aug.json"
grep -q random_crop "$tmp/aug.json" || bad "the augmented model was not written"
"$nabla" train "$tmp/aug.json" --data "$tmp/hue" --epochs 1 --out "$tmp/aug" > "$tmp/train.log" 2>&1 &&
    ok || bad "train with normalisation and augmentation: $(tail -n 2 "$tmp/train.log")"
"$nabla" train "$tmp/aug.json" --data "$tmp/hue" --epochs 1 --out "$tmp/aug2" > /dev/null 2>&1 &&
    cmp -s "$tmp/aug/weights.safetensors" "$tmp/aug2/weights.safetensors" && ok ||
    bad "two augmented runs with one seed differ"

# 5. Bad settings: one line naming the field, exit 2, nothing written.
# expect_2 WHAT TEXT JSON-EDIT: train with the model edited by sed.
expect_2() {
    sed "$3" "$models/hue.json" > "$tmp/bad.json"
    "$nabla" train "$tmp/bad.json" --data "$tmp/hue" --out "$tmp/bad-run" > /dev/null 2> "$tmp/err"
    status=$?
    if [ "$status" -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF -- "$2" "$tmp/err" &&
        [ ! -e "$tmp/bad-run" ]; then
        ok
    else
        bad "$1: exit $status, $(head -c 300 "$tmp/err")"
    fi
}
expect_2 "negative padding" 'training.random_crop.padding: must not be negative, got -1' \
    's/"seed": 1}/"seed": 1, "random_crop": {"padding": -1}}/'
expect_2 "flip probability above 1" 'training.hflip: must be in [0, 1], got 1.5' \
    's/"seed": 1}/"seed": 1, "hflip": 1.5}/'
expect_2 "two means for three channels" 'training.normalize.mean: 2 values for an input of 3 channels' \
    's/"seed": 1}/"seed": 1, "normalize": {"mean": [0.5, 0.5], "std": 0.25}}/'
expect_2 "a mean without std" 'training.normalize: a mean needs its std' \
    's/"seed": 1}/"seed": 1, "normalize": {"mean": 0.5}}/'
expect_2 "crop and translate" 'random_crop and translate both shift the image' \
    's/"seed": 1}/"seed": 1, "random_crop": {"padding": 1}, "translate": 2}/'

echo "test_colour.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
