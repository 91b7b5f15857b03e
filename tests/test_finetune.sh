#!/bin/sh
# nabla train as Keras and PyTorch users train, end to end on a small
# subset of Fashion-MNIST: fine-tuning from weights (--weights, --partial)
# with frozen layers (--freeze, "trainable": false, nabla summary's
# counts), early stopping that restores the best epoch, keep_best,
# reduce_lr_on_plateau and warmup as metrics.csv shows them,
# --checkpoint-every resumed after a SIGKILL to the same bits, a DIR/val/
# folder as the validation set, and the class names the weights keep.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-finetune.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

if [ ! -d "$data" ]; then
    echo "test_finetune: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

# header FILE: a safetensors file's JSON header.
header() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    head -c $((8 + n)) "$1" | tail -c "$n"
}

# tensor FILE NAME: the bytes of tensor NAME of a safetensors file.
tensor() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    offsets=$(header "$1" | grep -o "\"$2\":{[^}]*}" | sed -n 's/.*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/p')
    [ -n "$offsets" ] || { echo "no tensor $2 in $1" >&2; return 1; }
    # shellcheck disable=SC2086  # two numbers
    set -- "$1" $offsets
    tail -c +$((9 + n + $2)) "$1" | head -c $(($3 - $2))
}

# same A B NAME: tensor NAME is the same bytes in files A and B.
same() {
    tensor "$1" "$3" > "$tmp/t1" && tensor "$2" "$3" > "$tmp/t2" && [ -s "$tmp/t1" ] && cmp -s "$tmp/t1" "$tmp/t2"
}

# column FILE NAME: a column of metrics.csv, one value a line.
column() {
    awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { print $c }' "$1"
}

# expect_fail WHAT TEXT: the last run ($status, $tmp/err) exited 2 after one
# line on stderr holding TEXT.
expect_fail() {
    if [ "$status" -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF -- "$2" "$tmp/err"; then
        ok
    else
        bad "$1: exit $status (expected 2): $(head -c 400 "$tmp/err")"
    fi
}

train() {
    "$nabla" train "$models/lenet.json" --data "$data" "$@"
}

# ---- fine-tuning --------------------------------------------------------------

# 1. Weights of a first run, fine-tuned for an epoch with conv1 frozen:
# conv1's tensors keep their bits, the others change, the accuracy shows.
train --limit 1000 --epochs 1 --out "$tmp/base" > /dev/null 2>&1 || bad "the first run failed"
base=$tmp/base/weights.safetensors
train --limit 1000 --epochs 1 --weights "$base" --freeze conv1 --out "$tmp/ft" > "$tmp/ft.log" 2>&1 ||
    bad "fine-tuning failed: $(tail -n 2 "$tmp/ft.log")"
for t in conv1.weight conv1.bias; do
    same "$base" "$tmp/ft/weights.safetensors" $t && ok || bad "frozen $t changed"
done
for t in conv2.weight conv2.bias fc1.weight fc3.bias; do
    same "$base" "$tmp/ft/weights.safetensors" $t && bad "$t did not change" || ok
done
grep -q '^test accuracy: 0\.[0-9]*$' "$tmp/ft.log" && ok || bad "no test accuracy after fine-tuning"
grep -q 'frozen: conv1' "$tmp/ft.log" && ok || bad "the run does not say what is frozen: $(head -n 3 "$tmp/ft.log")"

# 2. The same through the model file's "trainable": false, and summary's
# counts as Keras's: conv1's 60 parameters are non-trainable.
sed 's/"name": "conv1", \(.*\)}/"name": "conv1", \1, "trainable": false}/' "$models/lenet.json" > "$tmp/frozen.json"
"$nabla" summary "$tmp/frozen.json" > "$tmp/summary" 2>&1
grep -q '^conv1 (conv2d, frozen) ' "$tmp/summary" && ok || bad "summary does not mark conv1 frozen"
grep -qx 'Trainable params: 106,094' "$tmp/summary" && grep -qx 'Non-trainable params: 60' "$tmp/summary" &&
    grep -qx 'Total params: 106,154' "$tmp/summary" && ok || bad "summary's counts: $(grep params "$tmp/summary")"
"$nabla" train "$tmp/frozen.json" --data "$data" --limit 1000 --epochs 1 --weights "$base" \
    --out "$tmp/ft2" > /dev/null 2>&1 || bad "fine-tuning the frozen model file failed"
cmp -s "$tmp/ft/weights.safetensors" "$tmp/ft2/weights.safetensors" && ok ||
    bad "\"trainable\": false and --freeze conv1 gave other weights"

# 3. A tensor missing and one extra: refused, naming them; --partial loads
# the rest and lists both on stderr.
n=$(od -An -tu8 -N8 "$base" | tr -d ' ')
{ head -c $((8 + n)) "$base" | sed 's/"fc3\.bias"/"fc9.bias"/'; tail -c +$((9 + n)) "$base"; } > "$tmp/renamed.safetensors"
train --limit 200 --epochs 1 --weights "$tmp/renamed.safetensors" --out "$tmp/x" > /dev/null 2> "$tmp/err"
status=$?
expect_fail "weights without fc3.bias" "fc3.bias"
[ ! -e "$tmp/x" ] && ok || bad "a refused run made its directory"
train --limit 200 --epochs 1 --weights "$tmp/renamed.safetensors" --partial --out "$tmp/partial" \
    > /dev/null 2> "$tmp/err" || bad "--partial failed: $(cat "$tmp/err")"
grep -q 'fc3\.bias' "$tmp/err" && grep -q 'fc9\.bias' "$tmp/err" && ok ||
    bad "--partial does not list fc3.bias and fc9.bias: $(cat "$tmp/err")"
train --limit 200 --epochs 1 --partial --out "$tmp/x" > /dev/null 2> "$tmp/err"
status=$?
expect_fail "--partial without --weights" "--weights"
train --limit 200 --epochs 1 --freeze conv7 --out "$tmp/x" > /dev/null 2> "$tmp/err"
status=$?
expect_fail "--freeze of no layer" "conv7"

# ---- callbacks ---------------------------------------------------------------

# 4. A run that overfits (400 images, Adam) stops early, at the epoch
# patience says after the best val_loss, and ends with the best epoch's
# weights, which keep_best wrote to best.safetensors.
train --limit 400 --epochs 60 --optimizer adam --lr 0.003 --validation-split 0.25 \
    --early-stopping 3 --keep-best val_loss --out "$tmp/es" > "$tmp/es.log" 2>&1 ||
    bad "early stopping run failed: $(tail -n 2 "$tmp/es.log")"
rows=$(($(wc -l < "$tmp/es/metrics.csv") - 1))
# The best epoch and where patience ran out, from the val_loss column.
best=$(column "$tmp/es/metrics.csv" val_loss | awk 'NR == 1 || $1 < min { min = $1; e = NR } END { print e }')
[ "$rows" -lt 60 ] && [ "$rows" -eq $((best + 3)) ] && ok ||
    bad "early stopping after $rows epochs, the best being $best: expected $((best + 3))"
grep -qx "restored the weights of epoch $best" "$tmp/es.log" && ok || bad "no 'restored the weights of epoch $best'"
[ "$(column "$tmp/es/metrics.csv" restored | tail -n 1)" = "$best" ] && ok ||
    bad "metrics.csv's last row does not say epoch $best was restored"
cmp -s "$tmp/es/weights.safetensors" "$tmp/es/best.safetensors" && ok ||
    bad "the weights are not best.safetensors"
# keep_best's column: 1 exactly where val_loss improved.
want=$(column "$tmp/es/metrics.csv" val_loss | awk 'NR == 1 || $1 < min { min = $1; print 1; next } { print 0 }')
[ "$(column "$tmp/es/metrics.csv" best)" = "$want" ] && ok || bad "the best column is not where val_loss improved"
# Resumed with more epochs, a stopped run stays stopped.
train --limit 400 --epochs 61 --optimizer adam --lr 0.003 --validation-split 0.25 \
    --early-stopping 3 --keep-best val_loss --out "$tmp/es" --resume > "$tmp/es2.log" 2>&1
cmp -s "$tmp/es/weights.safetensors" "$tmp/es/best.safetensors" && ok || bad "a resumed stopped run trained on"

# 5. reduce_lr_on_plateau: the rate is 0.003 until val_loss has not
# improved by its min_delta (1e-4) for 2 epochs, then a tenth of it, as
# Keras's rule; it never rises.
train --limit 400 --epochs 25 --optimizer adam --lr 0.003 --validation-split 0.25 \
    --reduce-lr-on-plateau 2 --out "$tmp/plateau" > /dev/null 2>&1 || bad "plateau run failed"
lr_ok=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "val_loss") v = i; if ($i == "lr") l = i }; next }
    { if (NR > 2) {
          dropped = $l + 0 != lr + 0
          if (dropped != (wait >= 2) || (dropped && ($l - lr * 0.1) ^ 2 > 1e-18)) bad = 1
          if (dropped) { wait = 0; drops++ }
      }
      if (NR == 2 || $v < min - 1e-4) { min = $v; wait = 0 } else wait++
      lr = $l }
    END { print (bad || !drops) ? "no" : "yes" }' "$tmp/plateau/metrics.csv")
[ "$lr_ok" = yes ] && ok || bad "reduce_lr_on_plateau's rates: $(column "$tmp/plateau/metrics.csv" lr | tr '\n' ' ')"

# 6. warmup over 4 epochs of SGD at 0.1: a quarter, a half, three
# quarters, then the rate.
train --limit 400 --epochs 5 --warmup 4 --out "$tmp/warm" > /dev/null 2>&1 || bad "warmup run failed"
[ "$(column "$tmp/warm/metrics.csv" lr | tr '\n' ' ')" = "0.025 0.05 0.075 0.1 0.1 " ] && ok ||
    bad "warmup's rates: $(column "$tmp/warm/metrics.csv" lr | tr '\n' ' ')"

# ---- checkpoints every N batches ------------------------------------------------

# 7. --checkpoint-every 4: killed (SIGKILL) once a checkpoint inside the
# first epoch is written, resumed, the same weights as a run not killed.
train --limit 3000 --epochs 2 --checkpoint-every 4 --out "$tmp/every" > /dev/null 2>&1 || bad "--checkpoint-every run failed"
cmp -s "$tmp/base/weights.safetensors" "$tmp/every/weights.safetensors" && bad "--limit 3000 gave the weights of --limit 1000" || ok
train --limit 3000 --epochs 2 --out "$tmp/straight" > /dev/null 2>&1
cmp -s "$tmp/straight/weights.safetensors" "$tmp/every/weights.safetensors" && ok ||
    bad "checkpoints every 4 batches changed the weights"
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 --checkpoint-every 4 \
    --out "$tmp/killed" > /dev/null 2>&1 &
pid=$!
i=0
until [ -s "$tmp/killed/checkpoint.safetensors" ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -KILL $pid 2> /dev/null
wait $pid 2> /dev/null
batch=$(header "$tmp/killed/checkpoint.safetensors" | sed -n 's/.*"batch":"\([0-9]*\)".*/\1/p')
epoch=$(header "$tmp/killed/checkpoint.safetensors" | sed -n 's/.*"epoch":"\([0-9]*\)".*/\1/p')
[ "$epoch" = 0 ] && [ "${batch:-0}" -gt 0 ] && ok ||
    bad "the first checkpoint is not one inside the first epoch (epoch $epoch, batch $batch)"
train --limit 3000 --epochs 2 --checkpoint-every 4 --out "$tmp/killed" --resume > /dev/null 2>&1 ||
    bad "resuming the killed run failed"
cmp -s "$tmp/straight/weights.safetensors" "$tmp/killed/weights.safetensors" && ok ||
    bad "killed after batch $batch and resumed: other weights"
train --limit 300 --epochs 1 --checkpoint-every 0 --out "$tmp/x" > /dev/null 2> "$tmp/err"
status=$?
expect_fail "--checkpoint-every 0" "--checkpoint-every"

# ---- data: a validation folder, class names ------------------------------------

# 8. DIR/val/ is the validation set: its images validate, the model file's
# validation_split gives way, and --validation-split with it is refused.
shapes=$top_srcdir/tests/data/png/shapes
mkdir "$tmp/shapes"
cp -r "$shapes/train" "$shapes/test" "$tmp/shapes/"
cp -r "$shapes/test" "$tmp/shapes/val"
nval=$(find "$tmp/shapes/val" -name '*.png' | wc -l)
ntrain=$(find "$tmp/shapes/train" -name '*.png' | wc -l)
"$nabla" train "$models/keras-cnn.json" --data "$tmp/shapes" --epochs 1 --batch-size 2 \
    --out "$tmp/val" > "$tmp/val.log" 2>&1 || bad "training with a val/ folder failed: $(tail -n 1 "$tmp/val.log")"
grep -q "on $ntrain images ($nval for validation)" "$tmp/val.log" && ok ||
    bad "val/ is not the validation set: $(head -n 1 "$tmp/val.log")"
[ -n "$(column "$tmp/val/metrics.csv" val_loss)" ] && ok || bad "no val_loss with a val/ folder"
"$nabla" train "$models/keras-cnn.json" --data "$tmp/shapes" --epochs 1 --batch-size 2 \
    --validation-split 0.5 --out "$tmp/x" > /dev/null 2> "$tmp/err"
status=$?
expect_fail "--validation-split with val/" "own validation split"
mkdir "$tmp/shapes/val/cross"
"$nabla" train "$models/keras-cnn.json" --data "$tmp/shapes" --epochs 1 --out "$tmp/x" > /dev/null 2> "$tmp/err"
status=$?
expect_fail "a class folder only in val/" '"cross"'

# 9. The class names in the weights: Fashion-MNIST's for Fashion-MNIST,
# the folders' for PNG folders; predict and eval name classes with them.
header "$base" | grep -qF '"classes":"[\"T-shirt/top\",\"Trouser\",' && ok ||
    bad "the weights do not hold Fashion-MNIST's names: $(header "$base" | head -c 300)"
header "$tmp/val/weights.safetensors" | grep -qF '"classes":"[\"bar\",\"dot\",\"ring\",null,' && ok ||
    bad "the weights do not hold the folders' names: $(header "$tmp/val/weights.safetensors" | head -c 300)"
"$nabla" predict "$models/keras-cnn.json" --weights "$tmp/val/weights.safetensors" \
    "$shapes"/test/ring/*.png > "$tmp/pred" 2>&1 || bad "predict failed: $(cat "$tmp/pred")"
grep -q ': [0-9] \(bar\|dot\|ring\) (' "$tmp/pred" && ok || bad "predict does not use the folders' names: $(head -n 1 "$tmp/pred")"
"$nabla" eval "$models/keras-cnn.json" --weights "$tmp/val/weights.safetensors" \
    --data "$top_srcdir/tests/data/idx/raw" > "$tmp/eval" 2>&1 || bad "eval failed: $(tail -n 1 "$tmp/eval")"
grep -q '^   2 ring ' "$tmp/eval" && ok || bad "eval of unnamed data does not use the weights' names"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
