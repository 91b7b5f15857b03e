#!/bin/sh
# Runs the C training programs of examples/ on a small subset of
# Fashion-MNIST, so they cannot rot: each must train and reach an accuracy
# well above chance.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
if [ ! -d "$data" ]; then
    echo "test_examples: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi
pass=0
fail=0
run() {
    name=$1
    shift
    if "$top_builddir/examples/$name" "$@"; then
        pass=$((pass + 1))
    else
        echo "FAIL: examples/$name $*" >&2
        fail=$((fail + 1))
    fi
}
run train_lenet --model "$top_srcdir/models/lenet.json" --data "$data" --limit 6000 --epochs 3 --min-accuracy 0.6
run binary_hinge --model "$top_srcdir/models/binary.json" --data "$data" --limit 4000 --epochs 3 --min-accuracy 0.85
run cnn_from_ops --data "$data" --limit 6000 --min-accuracy 0.65
ckpt="${TMPDIR:-/tmp}/fit_lenet.$$.safetensors"
run fit_lenet --model "$top_srcdir/models/lenet.json" --data "$data" --limit 6000 --epochs 3 \
    --checkpoint "$ckpt" --min-accuracy 0.6
rm -f "$ckpt"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
