#!/bin/sh
# examples/mpi_lenet under mpirun -np 2 on a small subset of Fashion-MNIST:
# it must train to an accuracy well above chance, and (once the ops sum in
# fixed groups) save the weights one process saves.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
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
    echo "test_mpi_example: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-mpi-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's unloaded plugins leave allocations LeakSanitizer cannot name.
case "${sanitize:-}" in
*address*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;;
esac
example="$top_builddir/examples/mpi_lenet"
set -- --model "$top_srcdir/models/lenet.json" --data "$data" --limit 6000 --epochs 3 --min-accuracy 0.5
fail=0
"$example" "$@" --save "$tmp/one.safetensors" || { echo "FAIL: mpi_lenet alone" >&2; fail=1; }
timeout -k 5 600 mpirun --oversubscribe -np 2 "$example" "$@" --save "$tmp/two.safetensors" ||
    { echo "FAIL: mpirun -np 2 mpi_lenet" >&2; fail=1; }
if grep -q nbi_batch_sum "$top_srcdir"/lib/ops/*.c 2>/dev/null &&
    ! cmp -s "$tmp/one.safetensors" "$tmp/two.safetensors"; then
    echo "FAIL: mpi_lenet on 2 processes saved other weights than on one" >&2
    fail=1
fi
[ "$fail" -eq 0 ]
