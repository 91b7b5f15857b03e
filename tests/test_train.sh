#!/bin/sh
# nabla train, eval and predict end to end on a small subset of
# Fashion-MNIST: the files a run writes, a run interrupted with SIGINT and
# resumed ending with the same weights as one that was not, and one clear
# line with exit status 2 for bad data.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-train.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

if [ ! -d "$data" ]; then
    echo "test_train: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

# 1. A short run writes everything and reports a test accuracy.
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 \
    --out "$tmp/a" > "$tmp/a.log" 2>&1 || bad "train exited $?: $(tail -n 1 "$tmp/a.log")"
for f in weights.safetensors checkpoint.safetensors metrics.csv curves.png; do
    [ -s "$tmp/a/$f" ] && ok || bad "train did not write $f"
done
grep -q '^test accuracy: 0\.[0-9]*$' "$tmp/a.log" && ok || bad "no test accuracy line"
[ "$(wc -l < "$tmp/a/metrics.csv")" -eq 3 ] && ok || bad "metrics.csv should have a header and 2 rows"

# 2. The same seed gives the same weights, bit for bit.
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 \
    --out "$tmp/b" > /dev/null 2>&1
cmp -s "$tmp/a/weights.safetensors" "$tmp/b/weights.safetensors" && ok ||
    bad "two runs with the same seed differ"

# 2b. One thread or two: the same training up to float rounding (the
# batch is split differently and partial sums add in another order).  SGD,
# as RMSprop's first steps divide by tiny running averages and magnify it.
for t in 1 2; do
    "$nabla" train "$models/keras-cnn.json" --data "$data" --limit 3200 --epochs 1 \
        --optimizer sgd --lr 0.1 --threads $t --out "$tmp/t$t" > /dev/null 2>&1 ||
        bad "train --threads $t exited $?"
done
l1=$(sed -n 2p "$tmp/t1/metrics.csv" | cut -d, -f2,4)
l2=$(sed -n 2p "$tmp/t2/metrics.csv" | cut -d, -f2,4)
awk -v a="$l1" -v b="$l2" 'BEGIN {
    split(a, x, ","); split(b, y, ",")
    if (x[1] == "" || y[1] == "") exit 1
    if (x[2] > 2.25) exit 1   # it learned: chance is ln 10 = 2.30
    for (i = 1; i <= 2; i++) { d = x[i] - y[i]; if (d < 0) d = -d; if (d > 1e-3 * x[i]) exit 1 }
}' && ok || bad "losses on 1 and 2 threads differ beyond rounding: $l1 vs $l2"

# 3. Interrupted and resumed: the same final weights.  Wherever the signal
# lands (even before the first batch or after the last), the resumed run
# must end where the uninterrupted one did.
"$nabla" train "$models/lenet.json" --data "$data" --limit 12000 --epochs 2 \
    --out "$tmp/full" > /dev/null 2>&1 || bad "the uninterrupted run failed"
"$nabla" train "$models/lenet.json" --data "$data" --limit 12000 --epochs 2 \
    --out "$tmp/cut" > "$tmp/cut.log" 2>&1 &
pid=$!
sleep 1
kill -INT "$pid" 2>/dev/null
wait "$pid"
status=$?
if [ "$status" -eq 130 ]; then
    grep -q 'interrupted: checkpoint written' "$tmp/cut.log" && ok || bad "no interrupt message"
    "$nabla" train "$models/lenet.json" --data "$data" --limit 12000 --epochs 2 \
        --out "$tmp/cut" --resume > "$tmp/resume.log" 2>&1 || bad "resume failed: $(tail -n 1 "$tmp/resume.log")"
elif [ "$status" -ne 0 ]; then
    bad "the interrupted run exited $status"
fi
cmp -s "$tmp/full/weights.safetensors" "$tmp/cut/weights.safetensors" && ok ||
    bad "interrupted and resumed weights differ from the uninterrupted run's"

# 4. eval and predict on the trained weights.
"$nabla" eval "$models/lenet.json" --weights "$tmp/a/weights.safetensors" --data "$data" \
    > "$tmp/eval.log" 2>&1 || bad "eval failed"
grep -q '^test accuracy: ' "$tmp/eval.log" && grep -q 'confusion matrix' "$tmp/eval.log" && ok ||
    bad "eval did not print accuracy and confusion matrix"
"$nabla" predict "$models/lenet.json" --weights "$tmp/a/weights.safetensors" \
    "$top_srcdir/tests/data/png/gray8.png" > "$tmp/predict.log" 2>&1 && ok || bad "predict failed"
grep -q 'top 3' "$tmp/predict.log" && ok || bad "predict printed no top 3"

# 5. A folder of PNGs, one subfolder per class: trains, and eval names the
# classes after the folders.
"$nabla" train "$models/lenet.json" --data "$top_srcdir/tests/data/png/shapes" --epochs 1 \
    --batch-size 2 --out "$tmp/shapes" > /dev/null 2>&1 || bad "train on PNG folders failed"
"$nabla" eval "$models/lenet.json" --data "$top_srcdir/tests/data/png/shapes" \
    --weights "$tmp/shapes/weights.safetensors" 2>&1 | grep -q ' 2 ring ' && ok ||
    bad "eval on PNG folders does not name the class ring"

# 6. Bad data: exit 2 and one line on stderr.
expect_2() {
    what=$1
    shift
    "$nabla" "$@" > /dev/null 2> "$tmp/err"
    status=$?
    lines=$(wc -l < "$tmp/err")
    if [ "$status" -eq 2 ] && [ "$lines" -eq 1 ]; then ok; else
        bad "$what: exit $status, $lines lines: $(head -c 300 "$tmp/err")"
    fi
}
expect_2 "missing data dir" train "$models/lenet.json" --data "$tmp/nowhere" --epochs 1
for f in wrong-magic truncated-images truncated-labels two-labels zero-rows corrupt-deflate.gz; do
    mkdir -p "$tmp/d-$f"
    cp "$top_srcdir/tests/data/idx/bad/$f" "$tmp/d-$f/train-images-idx3-ubyte"
    cp "$top_srcdir/tests/data/idx/bad/good-labels" "$tmp/d-$f/train-labels-idx1-ubyte"
    case "$f" in *labels*)
        cp "$top_srcdir/tests/data/idx/bad/good-images" "$tmp/d-$f/train-images-idx3-ubyte"
        cp "$top_srcdir/tests/data/idx/bad/$f" "$tmp/d-$f/train-labels-idx1-ubyte" ;;
    esac
    cp "$top_srcdir/tests/data/idx/bad/good-images" "$tmp/d-$f/t10k-images-idx3-ubyte"
    cp "$top_srcdir/tests/data/idx/bad/good-labels" "$tmp/d-$f/t10k-labels-idx1-ubyte"
    expect_2 "bad data $f" train "$models/lenet.json" --data "$tmp/d-$f" --epochs 1 --out "$tmp/x"
done
expect_2 "eval without weights" eval "$models/lenet.json"
expect_2 "predict a missing image" predict "$models/lenet.json" \
    --weights "$tmp/a/weights.safetensors" "$tmp/none.png"
expect_2 "train bad optimizer" train "$models/lenet.json" --optimizer adagrad

# 7. A loss that turns non-finite stops training, naming the step and the
# first layer whose output went bad: exit 1, one line.
"$nabla" train "$models/mlp.json" --data "$data" --limit 2000 --epochs 1 --lr 1e12 \
    --out "$tmp/nan" > /dev/null 2> "$tmp/err"
status=$?
if [ "$status" -eq 1 ] && grep -q 'step [0-9]* (epoch 1, batch [0-9]*): the loss is [^;]*; the output of layer .* is the first' "$tmp/err" &&
    [ "$(wc -l < "$tmp/err")" -eq 1 ]; then ok; else
    bad "non-finite loss: exit $status: $(cat "$tmp/err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
