#!/bin/sh
# nabla train, eval and visualize for an autoencoder, a model trained with
# its input images as targets ("target": "input", an mse loss), on a small
# slice of Fashion-MNIST: loss-only metrics.csv, console and eval (text and
# --json), a resume to the same weights, the reconstructions picture, and
# one clear line with exit status 2 for what the mode refuses.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-ae.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

# expect_fail CODE WHAT TEXT: the last run ($status, $tmp/err) exited with
# CODE after one line on stderr holding TEXT.
expect_fail() {
    if [ "$status" -eq "$1" ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF -- "$3" "$tmp/err"; then
        ok
    else
        bad "$2: exit $status (expected $1): $(head -c 400 "$tmp/err")"
    fi
}

# "W H" of a PNG, from its IHDR chunk.
size() { od -An -tu4 --endian=big -j16 -N8 "$1" | awk '{print $1, $2}'; }

if [ ! -d "$data" ]; then
    echo "test_autoencoder: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

# tests/data/cli/ae-small.json: a small convolutional encoder and a
# linear decoder to the flattened image, [784] against the flattened target.
cp "$top_srcdir/tests/data/cli/ae-small.json" "$tmp/ae.json"
sed 's/, "target": "input"//' "$tmp/ae.json" > "$tmp/plain.json"

# 1. One short epoch: loss only, everywhere.
"$nabla" train "$tmp/ae.json" --data "$data" --limit 640 --out "$tmp/a" > "$tmp/a.log" 2>&1 ||
    bad "train exited $?: $(tail -n 1 "$tmp/a.log")"
for f in weights.safetensors checkpoint.safetensors metrics.csv curves.png; do
    [ -s "$tmp/a/$f" ] && ok || bad "train did not write $f"
done
[ "$(head -n 1 "$tmp/a/metrics.csv")" = "epoch,train_loss,val_loss,lr,seconds,best,restored" ] &&
    ok || bad "metrics.csv header: $(head -n 1 "$tmp/a/metrics.csv")"
[ "$(wc -l < "$tmp/a/metrics.csv")" -eq 2 ] && ok || bad "metrics.csv should have a header and 1 row"
grep -q '^epoch 1/1: loss 0\.[0-9]* - val loss 0\.[0-9]* - ' "$tmp/a.log" && ok ||
    bad "epoch line: $(grep '^epoch' "$tmp/a.log")"
grep -q '^test loss: 0\.[0-9]*$' "$tmp/a.log" && ok || bad "no test loss line"
grep -qi 'accuracy' "$tmp/a.log" && bad "train printed an accuracy: $(grep -i accuracy "$tmp/a.log")" || ok

# 2. The flag does what the setting does, to the same bits.
"$nabla" train "$tmp/plain.json" --target input --data "$data" --limit 640 --out "$tmp/b" \
    > /dev/null 2>&1 || bad "train --target input exited $?"
cmp -s "$tmp/a/weights.safetensors" "$tmp/b/weights.safetensors" && ok ||
    bad "--target input and \"target\": \"input\" trained other weights"

# 3. Two epochs, or one and a resume to the second: the same weights.
"$nabla" train "$tmp/ae.json" --data "$data" --limit 320 --epochs 2 --out "$tmp/c" \
    > /dev/null 2>&1 || bad "train --epochs 2 exited $?"
"$nabla" train "$tmp/ae.json" --data "$data" --limit 320 --epochs 1 --out "$tmp/d" \
    > /dev/null 2>&1 || bad "train --epochs 1 exited $?"
"$nabla" train "$tmp/ae.json" --data "$data" --limit 320 --epochs 2 --out "$tmp/d" --resume \
    > /dev/null 2>&1 || bad "train --resume exited $?"
cmp -s "$tmp/c/weights.safetensors" "$tmp/d/weights.safetensors" && ok ||
    bad "a resumed autoencoder ended with other weights"
[ "$(wc -l < "$tmp/d/metrics.csv")" -eq 3 ] && ok || bad "resumed metrics.csv should have 2 rows"

# 4. eval: the test reconstruction loss, in text and JSON.
"$nabla" eval "$tmp/ae.json" --weights "$tmp/a/weights.safetensors" --data "$data" \
    > "$tmp/eval.txt" 2>&1 || bad "eval exited $?: $(tail -n 1 "$tmp/eval.txt")"
grep -q '^test loss: 0\.[0-9]*$' "$tmp/eval.txt" && ok || bad "eval: no test loss line"
grep -qi 'accuracy\|confusion' "$tmp/eval.txt" && bad "eval printed an accuracy" || ok
"$nabla" eval "$tmp/ae.json" --weights "$tmp/a/weights.safetensors" --data "$data" --json \
    > "$tmp/eval.json" 2>&1 || bad "eval --json exited $?"
grep -q '"target":"input"' "$tmp/eval.json" && grep -q '"loss":0\.' "$tmp/eval.json" && ok ||
    bad "eval --json: $(cat "$tmp/eval.json")"
grep -q 'accuracy\|confusion\|per_class' "$tmp/eval.json" && bad "eval --json has an accuracy" || ok

# 5. The reconstructions: 6 images of 28 magnified to 56, on two rows with
# the grid's lines: 6 * 56 + 7 by 2 * 56 + 3.
"$nabla" visualize "$tmp/ae.json" --weights "$tmp/a/weights.safetensors" --reconstructions \
    --data "$data" --count 6 --out "$tmp/rec.png" > "$tmp/vis.log" 2>&1 ||
    bad "visualize --reconstructions exited $?: $(cat "$tmp/vis.log")"
[ "$(size "$tmp/rec.png")" = "343 115" ] && ok || bad "reconstructions.png is $(size "$tmp/rec.png")"
"$nabla" visualize "$tmp/ae.json" --reconstructions --data "$data" --out "$tmp/rec8.png" \
    > /dev/null 2>&1 || bad "visualize --reconstructions (default count) exited $?"
[ "$(size "$tmp/rec8.png")" = "457 115" ] && ok || bad "8 reconstructions are $(size "$tmp/rec8.png")"

# 6. Refusals, one line each.
"$nabla" train "$tmp/ae.json" --data "$data" --limit 64 --keep-best val_accuracy \
    --out "$tmp/e" > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "keep-best val_accuracy" 'keep_best watches val_accuracy, but with target "input" there is no accuracy: watch val_loss'
"$nabla" train "$tmp/plain.json" --data "$data" --limit 64 --out "$tmp/e" > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "mse on labels" 'for an autoencoder, set "target": "input" in its training section'
"$nabla" train "$models/lenet.json" --target input --data "$data" --limit 64 --out "$tmp/e" \
    > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "a classifier as autoencoder" '"lenet": target "input" compares the output with the input image: the loss must be mse'
"$nabla" train "$tmp/ae.json" --target inputs --data "$data" --out "$tmp/e" > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "--target inputs" "--target: expected label or input, got 'inputs'"
"$nabla" visualize "$models/lenet.json" --reconstructions --data "$data" --out "$tmp/x.png" \
    > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "reconstructions of a classifier" 'the model "lenet" outputs [10] for an input of [1, 28, 28]'
"$nabla" visualize "$tmp/ae.json" --reconstructions --count 0 --out "$tmp/x.png" \
    > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "--count 0" "--count"

echo "test_autoencoder: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
