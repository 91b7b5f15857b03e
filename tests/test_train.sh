#!/bin/sh
# nabla train, eval and predict end to end on a small subset of
# Fashion-MNIST: the files a run writes, a run interrupted with SIGINT,
# SIGTERM or SIGHUP (or killed between two of its writes) and resumed
# ending with the same weights as one that was not, resumes that refuse
# other settings or crafted metadata, the lock on the run directory, a
# write past `ulimit -f`, and one clear line with exit status 2 for bad
# data.
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

# expect_fail CODE WHAT TEXT: the last run ($status, $tmp/err) exited with
# CODE after one line on stderr holding TEXT.
expect_fail() {
    if [ "$status" -eq "$1" ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF -- "$3" "$tmp/err"; then
        ok
    else
        bad "$2: exit $status (expected $1): $(head -c 400 "$tmp/err")"
    fi
}

# no_temps DIR WHAT: no temporary of a run's file is left in DIR.
no_temps() {
    if ls "$1" | grep -q '\.tmp\.'; then bad "$2: temporaries left: $(ls "$1" | tr '\n' ' ')"; else ok; fi
}

# le64 N: N as 8 little-endian bytes.
le64() {
    n=$1
    for i in 0 1 2 3 4 5 6 7; do
        # shellcheck disable=SC2059  # the format is the byte
        printf "\\$(printf %03o $((n % 256)))"
        n=$((n / 256))
    done
}

# st_edit FILE SED: FILE, a safetensors file, with its JSON header edited
# by the sed script SED (its length and padding made again).
st_edit() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    head -c $((8 + n)) "$1" | tail -c "$n" | sed -e 's/ *$//' -e "$2" | tr -d '\n' > "$tmp/header"
    len=$(wc -c < "$tmp/header")
    pad=$(((8 - len % 8) % 8))
    { le64 $((len + pad)); cat "$tmp/header"; printf '%*s' "$pad" ''; tail -c +$((9 + n)) "$1"; } > "$1.edited"
    mv "$1.edited" "$1"
}

# wait_line FILE TEXT: waits (up to 60 s) for a line starting TEXT in FILE.
wait_line() {
    i=0
    until grep -q "^$2" "$1" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
}

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

# 2b. One thread or two: the same weights, bit for bit (every sum over a
# batch adds its examples in fixed groups and a fixed tree, whatever the
# threads).  The run must also have learned: chance is ln 10 = 2.30.
for t in 1 2; do
    "$nabla" train "$models/keras-cnn.json" --data "$data" --limit 3200 --epochs 1 \
        --optimizer sgd --lr 0.1 --threads $t --out "$tmp/t$t" > /dev/null 2>&1 ||
        bad "train --threads $t exited $?"
done
s1=$(sha256sum < "$tmp/t1/weights.safetensors" | cut -d' ' -f1)
s2=$(sha256sum < "$tmp/t2/weights.safetensors" | cut -d' ' -f1)
[ -n "$s1" ] && [ "$s1" = "$s2" ] && ok || bad "weights on 1 and 2 threads differ: $s1 vs $s2"
l1=$(sed -n 2p "$tmp/t1/metrics.csv" | cut -d, -f4)
awk -v a="$l1" 'BEGIN { exit !(a != "" && a < 2.25) }' && ok ||
    bad "keras-cnn did not learn on 1 thread: val_loss $l1"

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

# 3b. SIGTERM and SIGHUP do what Ctrl-C does: finish the batch, write the
# checkpoint, exit 128 + the signal; what the run printed is in its log
# (stdout is line-buffered), and --resume ends with the same weights.
for sig in TERM:143 HUP:129; do
    name=${sig%:*}
    code=${sig#*:}
    rm -rf "$tmp/sig" "$tmp/sig.log"
    "$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 \
        --out "$tmp/sig" > "$tmp/sig.log" 2>&1 &
    pid=$!
    wait_line "$tmp/sig.log" training
    kill -"$name" "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    if [ "$status" -eq "$code" ] && grep -q "^interrupted by SIG$name: checkpoint written" "$tmp/sig.log" &&
        [ -s "$tmp/sig/checkpoint.safetensors" ]; then ok; else
        bad "SIG$name: exit $status (expected $code): $(cat "$tmp/sig.log")"
    fi
    grep -q '^training lenet on' "$tmp/sig.log" && ok || bad "SIG$name: the log lost the first line"
    "$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 \
        --out "$tmp/sig" --resume > "$tmp/resume.log" 2>&1 || bad "resume after SIG$name failed: $(tail -n 1 "$tmp/resume.log")"
    cmp -s "$tmp/a/weights.safetensors" "$tmp/sig/weights.safetensors" && ok ||
        bad "stopped by SIG$name and resumed, the weights differ from the uninterrupted run's"
done

# 3c. Killed between the checkpoint's rename and metrics.csv's (by strace,
# when there is one; else its aftermath made by hand): the checkpoint holds
# the history, so --resume rebuilds metrics.csv and curves.png as the
# uninterrupted run wrote them, and removes the killed run's temporaries.
rm -rf "$tmp/kill"
if command -v strace > /dev/null 2>&1; then
    strace -f -o /dev/null -e inject=rename:signal=SIGKILL:when=2 "$nabla" train "$models/lenet.json" \
        --data "$data" --limit 3000 --epochs 2 --out "$tmp/kill" > /dev/null 2>&1
else
    "$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 --out "$tmp/kill" \
        > /dev/null 2>&1
    rm "$tmp/kill/curves.png" "$tmp/kill/weights.safetensors"
    head -n 2 "$tmp/kill/metrics.csv" > "$tmp/kill/metrics.csv.tmp.99999.1"
    mv "$tmp/kill/metrics.csv.tmp.99999.1" "$tmp/kill/metrics.csv"
fi
: > "$tmp/kill/checkpoint.safetensors.tmp.99999.0"
: > "$tmp/kill/notes.tmp.1.2"
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 --out "$tmp/kill" \
    --resume > "$tmp/resume.log" 2>&1 || bad "resume after a kill between writes failed: $(tail -n 1 "$tmp/resume.log")"
cmp -s "$tmp/a/weights.safetensors" "$tmp/kill/weights.safetensors" && ok ||
    bad "killed between writes and resumed, the weights differ from the uninterrupted run's"
cut -d, -f1-6 "$tmp/a/metrics.csv" > "$tmp/m1"
cut -d, -f1-6 "$tmp/kill/metrics.csv" > "$tmp/m2"
cmp -s "$tmp/m1" "$tmp/m2" && ok || bad "metrics.csv differs from the uninterrupted run's: $(cat "$tmp/m2")"
cmp -s "$tmp/a/curves.png" "$tmp/kill/curves.png" && ok || bad "curves.png differs from the uninterrupted run's"
[ -e "$tmp/kill/notes.tmp.1.2" ] && ok || bad "a file that is not the run's was removed"
rm -f "$tmp/kill/notes.tmp.1.2"
no_temps "$tmp/kill" "resume after a kill"

# 3d. --resume refuses what it cannot honour, in one line naming the
# setting and both values; more epochs go on, as many as are done test the
# weights, fewer are refused.
resume_2() {
    what=$1
    shift
    "$nabla" train "$models/lenet.json" --data "$data" --out "$tmp/a" --resume "$@" > /dev/null 2> "$tmp/err"
    status=$?
}
resume_2 batch --limit 3000 --epochs 2 --batch-size 32
expect_fail 2 "resume with another --batch-size" "batch_size is 64 in the checkpoint but 32 here"
resume_2 limit --limit 2000 --epochs 2
expect_fail 2 "resume with another --limit" "limit is 3000 in the checkpoint but 2000 here"
resume_2 lr --limit 3000 --epochs 2 --lr 0.05
expect_fail 2 "resume with another --lr" "lr is 0.1 in the checkpoint but 0.05 here"
resume_2 optimizer --limit 3000 --epochs 2 --optimizer adam
expect_fail 2 "resume with another --optimizer" "optimizer is \"sgd\" in the checkpoint but \"adam\" here"
resume_2 seed --limit 3000 --epochs 2 --seed 1
expect_fail 2 "resume with another --seed" "seed is 0 in the checkpoint but 1 here"
resume_2 model --limit 3000 --epochs 2 --data "$top_srcdir/tests/data/png/shapes"
expect_fail 2 "resume on other data" "the data is not the checkpoint's"
resume_2 epochs --limit 3000 --epochs 1
expect_fail 2 "resume with fewer --epochs" "epochs is 1 here, but the checkpoint has finished 2 epochs"
cp "$tmp/a/weights.safetensors" "$tmp/weights-2"
resume_2 done --limit 3000 --epochs 2
[ "$status" -eq 0 ] && grep -q "all 2 epochs are done, testing the trained weights" "$tmp/err" &&
    cmp -s "$tmp/weights-2" "$tmp/a/weights.safetensors" && ok ||
    bad "resume of a finished run: exit $status: $(cat "$tmp/err")"
cp -r "$tmp/a" "$tmp/more"
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 3 --out "$tmp/more" \
    --resume > /dev/null 2>&1 && [ "$(wc -l < "$tmp/more/metrics.csv")" -eq 4 ] && ok ||
    bad "resume with more --epochs did not train a third epoch"
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 3 --out "$tmp/three" \
    > /dev/null 2>&1
cmp -s "$tmp/three/weights.safetensors" "$tmp/more/weights.safetensors" && ok ||
    bad "2 epochs resumed to 3 differ from 3 epochs in one run"

# 3e. Crafted metadata: refused in one line, exit 2, nothing written.
for edit in 'epoch":"-1' 'epoch":"-100000' 'epoch":"99999999999' 'epoch":"1abc' 'batch":"-5' \
    'batch":"1000000' 'steps":"-99' 'seen":"-7' 'loss_sum":"nan' 'history":"1,2,3' \
    "shuffle_rng\":\"$(printf '%064d' 0)"; do
    rm -rf "$tmp/craft"
    cp -r "$tmp/a" "$tmp/craft"
    key=${edit%%\"*}
    st_edit "$tmp/craft/checkpoint.safetensors" "s/\"$key\":\"[^\"]*/\"$edit/"
    "$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 --out "$tmp/craft" \
        --resume > /dev/null 2> "$tmp/err"
    status=$?
    expect_fail 2 "crafted $edit" "checkpoint.safetensors: the checkpoint's $key is"
done

# 3f. One run at a time on a directory: a second refuses in one line while
# the first holds the lock, whoever holds it.
rm -rf "$tmp/lock"
"$nabla" train "$models/lenet.json" --data "$data" --limit 12000 --epochs 1 --out "$tmp/lock" \
    > "$tmp/lock.log" 2>&1 &
pid=$!
wait_line "$tmp/lock.log" training
# Stopped while the second tries, so that a fast machine cannot finish
# the first run before the second looks at the lock.
kill -STOP "$pid"
"$nabla" train "$models/lenet.json" --data "$data" --limit 600 --epochs 1 --out "$tmp/lock" \
    > /dev/null 2> "$tmp/err"
status=$?
kill -CONT "$pid"
expect_fail 2 "a second run on a directory in use" "another nabla train is running on this directory"
wait "$pid" && ok || bad "the first run on a locked directory failed: $(tail -n 1 "$tmp/lock.log")"
if command -v flock > /dev/null 2>&1; then
    # This shell holds the lock, on its descriptor 9, until it closes it.
    exec 9> "$tmp/lock/train.lock"
    if flock -n 9; then
        "$nabla" train "$models/lenet.json" --data "$data" --limit 600 --epochs 1 --out "$tmp/lock" \
            > /dev/null 2> "$tmp/err"
        status=$?
        expect_fail 2 "a run on a directory another process locked" "(it holds train.lock)"
    else
        bad "flock could not lock $tmp/lock/train.lock"
    fi
    exec 9>&-
fi

# 3g. Past `ulimit -f`, the write fails as any write: one line, exit 1, its
# temporary removed (and the process is not killed by SIGXFSZ).
rm -rf "$tmp/big"
mkdir "$tmp/big"
(ulimit -f 100 && exec "$nabla" train "$models/lenet.json" --data "$data" --limit 600 --epochs 1 \
    --out "$tmp/big" > /dev/null 2> "$tmp/err")
status=$?
expect_fail 1 "a checkpoint past ulimit -f" "checkpoint.safetensors: cannot write: File too large"
no_temps "$tmp/big" "a write past ulimit -f"

# 3h. --resume before any checkpoint (a run killed while it loaded) starts
# from the beginning, saying so.
rm -rf "$tmp/fresh"
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 2 --out "$tmp/fresh" \
    --resume > /dev/null 2> "$tmp/err" && grep -q 'no checkpoint yet, training from the start' "$tmp/err" &&
    cmp -s "$tmp/a/weights.safetensors" "$tmp/fresh/weights.safetensors" && ok ||
    bad "resume without a checkpoint: $(cat "$tmp/err")"

# 3i. scripts/kill-test.sh in short: SIGKILL at three random moments, each
# run resumed to the weights of one never killed.
bin=$(cd "$(dirname "$nabla")" && pwd)/nabla
NABLA=$bin NABLA_DATA=$data bash "$top_srcdir/scripts/kill-test.sh" 3 > "$tmp/kill.log" 2>&1 && ok ||
    bad "kill-test.sh: $(grep -E 'FAIL|failed' "$tmp/kill.log" | head -n 3)"

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
# A run refused for its input leaves nothing behind: not even its directory.
[ ! -e "$tmp/x" ] && ok || bad "a run refused for its data made its directory $tmp/x"
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
