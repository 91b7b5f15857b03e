#!/usr/bin/env bash
# Two processes against two threads: one epoch of the Keras CNN on 19,200
# Fashion-MNIST images, timed as whole commands (loading, the epoch, its
# validation on 4,800 images and the test on 6,000):
#   nabla train --threads 2                  one process, two threads
#   mpirun -np 2 nabla train --threads 1     two processes, one thread each
# --limit 24000 takes the first 24,000 training images, of which the
# model file's validation_split (0.2) keeps the last 4,800 for validation:
# 19,200 train.  Run it on an otherwise idle machine with two cores or
# more; docs/distributed.md says what to expect.
#   bench/dist.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
nabla="$build/tools/nabla"
[ -x "$nabla" ] || { echo "bench/dist.sh: no $nabla (build first)" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "bench/dist.sh: no mpirun (install openmpi-bin)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-dist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Open MPI refuses root without these; 2 processes fit 2 cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
images=19200
args=(train models/keras-cnn.json --limit 24000 --epochs 1)

# run NAME COMMAND...: the command's wall seconds, its output in NAME.log
run() {
    local name=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    "$@" > "$tmp/$name.log" 2>&1 || { echo "bench/dist.sh: $name failed:" >&2; tail -n 5 "$tmp/$name.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

threads=$(run threads "$nabla" "${args[@]}" --threads 2 --out "$tmp/threads")
procs=$(run procs mpirun -np 2 "$nabla" "${args[@]}" --threads 1 --out "$tmp/procs")
epoch() { sed -n 's/^epoch 1\/1: .* - \([0-9.]*\) s$/\1/p' "$tmp/$1.log"; }
printf '%-38s %8s %10s %14s\n' "" "command" "images/s" "epoch (+val)"
printf '%-38s %7.2fs %10.0f %13ss\n' "nabla train --threads 2" "$threads" \
    "$(echo "$images / $threads" | bc -l)" "$(epoch threads)"
printf '%-38s %7.2fs %10.0f %13ss\n' "mpirun -np 2 nabla train --threads 1" "$procs" \
    "$(echo "$images / $procs" | bc -l)" "$(epoch procs)"
printf 'ratio (threads time / processes time): %.2f\n' "$(echo "$threads / $procs" | bc -l)"
if cmp -s "$tmp/threads/weights.safetensors" "$tmp/procs/weights.safetensors"; then
    echo "weights: the same bits"
else
    echo "weights: differ (the ops' sums are not yet in fixed groups?)"
fi
