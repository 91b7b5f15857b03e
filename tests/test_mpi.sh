#!/bin/sh
# nabla train under mpirun on a small subset of Fashion-MNIST:
#  1. LeNet (SGD), the Keras CNN (RMSprop, a validation split) and
#     bn-dropout (Adam, batch norm, dropout) end with the same weights,
#     bit for bit, on 1 and 2 threads and on 2 (1 and 2 threads), 3
#     (uneven shares) and 4 processes (an empty share in the epoch's last
#     batch and in evaluation's);
#  2. a run resumed under another process count reaches the same weights;
#  3. processes given different model files are refused in one line;
#  4. a bad data directory (or too little memory) on one process is one
#     line naming its rank;
#  5. a process killed by SIGKILL ends the job in bounded time with
#     mpirun's message, and the last checkpoint resumes;
#  6. SIGINT to mpirun writes one checkpoint, which resumes.
# The weights can be the same only once the ops sum over a batch's
# examples in fixed groups (lib/batch.c's nbi_batch_sum); until then the
# comparisons are skipped with a line saying so, the rest still runs.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}

if [ "${have_mpi:-}" != yes ]; then
    echo "SKIP: built without MPI"
    exit 77
fi
if ! command -v mpirun > /dev/null 2>&1; then
    echo "SKIP: no mpirun on the PATH (install Debian's openmpi-bin)"
    exit 77
fi
if [ ! -d "$data" ]; then
    echo "test_mpi: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-mpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

# For these runs only: Open MPI refuses root without them, and runs no
# more processes than cores without --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under AddressSanitizer: Open MPI's plugins leave allocations at exit
# that LeakSanitizer cannot name (they are unloaded by then), so leaks
# are not checked under mpirun; test_dist.c checks the same code for them
# with threads as processes, and the runs without mpirun check the rest.
case "${sanitize:-}" in
*address*)
    echo "test_mpi: AddressSanitizer without leak checks under mpirun (Open MPI's unloaded plugins leave allocations)"
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    slow=4 ;;
*) slow=1 ;;
esac
# mpi SECONDS ARGS: mpirun ARGS, ended after SECONDS (times $slow).
mpi() {
    limit=$(($1 * slow))
    shift
    timeout -k 5 "$limit" mpirun --oversubscribe "$@"
}

# The ops sum in fixed groups: then every comparison must hold.
if grep -q nbi_batch_sum "$top_srcdir"/lib/ops/*.c 2>/dev/null; then
    det=yes
else
    det=no
    echo "test_mpi: the ops do not sum in fixed groups yet (no nbi_batch_sum in lib/ops): weights are not compared"
fi

# same WHAT A B: files A and B have the same bytes (when det).
same() {
    [ -s "$2" ] && [ -s "$3" ] || { bad "$1: no weights ($2, $3)"; return; }
    [ "$det" = yes ] || { ok; return; }
    if cmp -s "$2" "$3"; then ok; else bad "$1: weights differ ($(sha256sum < "$2" | cut -c1-12) vs $(sha256sum < "$3" | cut -c1-12))"; fi
}

# expect_fail CODE WHAT TEXT: the last run ($status, $tmp/err) exited with
# CODE, one line of nabla's on stderr holding TEXT (mpirun adds its own).
expect_fail() {
    lines=$(grep -c '^nabla train:' "$tmp/err")
    if [ "$status" -eq "$1" ] && [ "$lines" -eq 1 ] && grep '^nabla train:' "$tmp/err" | grep -qF -- "$3"; then
        ok
    else
        bad "$2: exit $status (expected $1), $lines lines: $(grep -v '^[- ]' "$tmp/err" | head -c 600)"
    fi
}

# 1. The same weights for any processes and threads.
train() { # OUT ARGS...: one run, its log in OUT.log
    out=$1
    shift
    "$@" --data "$data" --out "$tmp/$out" > "$tmp/$out.log" 2>&1 || bad "$out exited $?: $(grep -v '^[- ]' "$tmp/$out.log" | tail -n 3)"
}
for model in lenet keras-cnn bn-dropout; do
    m="$models/$model.json"
    set -- --limit 700 --epochs 1
    train "$model-t1" "$nabla" train "$m" "$@" --threads 1
    train "$model-t2" "$nabla" train "$m" "$@" --threads 2
    train "$model-p2" mpi 120 -np 2 "$nabla" train "$m" "$@" --threads 1
    train "$model-p2t2" mpi 120 -np 2 "$nabla" train "$m" "$@" --threads 2
    train "$model-p3" mpi 120 -np 3 "$nabla" train "$m" "$@" --threads 1
    train "$model-p4" mpi 120 -np 4 "$nabla" train "$m" "$@" --threads 1
    for run in t2 p2 p2t2 p3 p4; do
        same "$model $run" "$tmp/$model-t1/weights.safetensors" "$tmp/$model-$run/weights.safetensors"
    done
    # Rank 0 alone prints: one training line, one test accuracy.
    [ "$(grep -c '^test accuracy' "$tmp/$model-p3.log")" -eq 1 ] && ok || bad "$model -np 3: not one test accuracy line"
done

# 2. Two epochs as one run, and as one epoch on 2 processes resumed on 3.
set -- "$models/bn-dropout.json" --limit 700 --threads 1
train resume-ref "$nabla" train "$@" --epochs 2
train resume mpi 120 -np 2 "$nabla" train "$@" --epochs 1
train resume mpi 120 -np 3 "$nabla" train "$@" --epochs 2 --resume
grep -q '^epoch 2/2' "$tmp/resume.log" && ok || bad "the resumed run did not train epoch 2"
same "resumed on 3 processes" "$tmp/resume-ref/weights.safetensors" "$tmp/resume/weights.safetensors"
# The metrics but the seconds.
if [ "$det" = no ] || [ "$(cut -d, -f1-6 < "$tmp/resume-ref/metrics.csv")" = "$(cut -d, -f1-6 < "$tmp/resume/metrics.csv")" ]; then
    ok
else
    bad "the resumed run's metrics differ"
fi

# 3. Different model files (MPMD) are refused in one line, exit 2.
mpi 60 -np 1 "$nabla" train "$models/lenet.json" --limit 700 --data "$data" --out "$tmp/mpmd" : \
    -np 1 "$nabla" train "$models/cnn3.json" --limit 700 --data "$data" --out "$tmp/mpmd" \
    > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "different models" "rank 1's model is not rank 0's"
mpi 60 -np 1 "$nabla" train "$models/lenet.json" --limit 700 --data "$data" --out "$tmp/mpmd" : \
    -np 1 "$nabla" train "$models/lenet.json" --limit 700 --lr 0.2 --data "$data" --out "$tmp/mpmd" \
    > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "different settings" "rank 1's lr is 0.2, rank 0's 0.1"
[ ! -e "$tmp/mpmd/checkpoint.safetensors" ] && ok || bad "a refused job wrote a checkpoint"

# 4. A bad data directory on one process: one line naming it, exit 2.
mpi 60 -np 2 "$nabla" train "$models/lenet.json" --limit 700 --data "$data" --out "$tmp/bad" : \
    -np 1 "$nabla" train "$models/lenet.json" --limit 700 --data "$tmp/nowhere" --out "$tmp/bad" \
    > /dev/null 2> "$tmp/err"
status=$?
expect_fail 2 "bad data on rank 2" "rank 2: $tmp/nowhere"
# ... and a memory limit too low on one: exit 1.
mpi 60 -np 1 "$nabla" train "$models/lenet.json" --limit 700 --data "$data" --out "$tmp/bad" : \
    -np 1 env NABLA_MAX_MEMORY=2M "$nabla" train "$models/lenet.json" --limit 700 --data "$data" \
    --out "$tmp/bad" > /dev/null 2> "$tmp/err"
status=$?
expect_fail 1 "too little memory on rank 1" "rank 1: model \"lenet\": training with sgd on batches of 64 needs"

# wait_line FILE TEXT: waits (up to 120 s) for a line starting TEXT.
wait_line() {
    i=0
    until grep -q "^$2" "$1" 2>/dev/null || [ $i -ge 1200 ]; do sleep 0.1; i=$((i + 1)); done
}
# launcher JOB: the mpirun under JOB, a background `mpi` (a subshell, its
# timeout, then mpirun).
launcher() {
    p=$1
    for _ in 1 2 3; do
        p=$(pgrep -P "$p" | head -n 1)
        [ -n "$p" ] || return 0
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mpirun ]; then echo "$p"; return 0; fi
    done
}
# rank_pid PID RANK: the process of rank RANK among mpirun PID's children.
rank_pid() {
    for c in $(pgrep -P "$1"); do
        if tr '\0' '\n' < "/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$c"
            return
        fi
    done
}

# 5. SIGKILL to rank 1 after the first epoch: the job ends within a
#    bound, mpirun names the rank, the checkpoint of epoch 1 resumes.
set -- "$models/keras-cnn.json" --limit 12000 --epochs 2 --threads 1
train kill-ref "$nabla" train "$@"
mpi 120 -np 2 "$nabla" train "$@" --data "$data" --out "$tmp/kill" > "$tmp/kill.log" 2>&1 &
job=$!
wait_line "$tmp/kill.log" "epoch 1/2"
victim=$(rank_pid "$(launcher "$job")" 1)
start=$(date +%s)
[ -n "$victim" ] && kill -KILL "$victim"
wait "$job"
status=$?
took=$(($(date +%s) - start))
if [ -n "$victim" ] && [ "$status" -ne 0 ] && [ "$took" -le $((10 * slow)) ]; then ok; else bad "SIGKILL to rank 1: exit $status after $took s"; fi
grep -q "rank 1 .*exited on signal 9" "$tmp/kill.log" && ok || bad "no message naming the killed rank: $(grep -v '^[- ]' "$tmp/kill.log" | tail -n 3)"
train kill mpi 120 -np 2 "$nabla" train "$@" --resume
grep -q '^epoch 2/2' "$tmp/kill.log" && ok || bad "the run resumed after SIGKILL did not train epoch 2"
same "resumed after SIGKILL" "$tmp/kill-ref/weights.safetensors" "$tmp/kill/weights.safetensors"

# 6. SIGINT to mpirun: it sends SIGTERM to every process (SIGKILL a second
#    later); they stop after the same batch, rank 0 writes the checkpoint.
mpi 120 -np 2 "$nabla" train "$@" --data "$data" --out "$tmp/int" > "$tmp/int.log" 2>&1 &
job=$!
wait_line "$tmp/int.log" "epoch 1/2"
start=$(date +%s)
mp=$(launcher "$job")
[ -n "$mp" ] && kill -INT "$mp"
wait "$job"
took=$(($(date +%s) - start))
[ "$took" -le $((10 * slow)) ] && ok || bad "SIGINT: the job took $took s to end"
if [ "$(grep -c '^interrupted by SIGTERM: checkpoint written' "$tmp/int.log")" -eq 1 ]; then ok; else
    bad "SIGINT: not one checkpoint line: $(grep -v '^[- ]' "$tmp/int.log" | tail -n 3)"; fi
train int mpi 120 -np 3 "$nabla" train "$@" --resume
same "resumed after SIGINT on 3 processes" "$tmp/kill-ref/weights.safetensors" "$tmp/int/weights.safetensors"

echo "test_mpi: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
