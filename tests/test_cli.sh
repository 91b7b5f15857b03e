#!/bin/sh
# test_cli.sh - the `nabla` command-line tool, run by make check.
#
# Needs top_srcdir (models/, tests/data/) and top_builddir (tools/nabla);
# make check sets both.  By hand, from a build directory:
#   top_srcdir=.. top_builddir=. ../tests/test_cli.sh
# Prints one line per failed check and ends with "N passed, N failed".

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data="$top_srcdir/tests/data/cli"
bad="$top_srcdir/tests/data/models-bad"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# run ARGS...: runs nabla, keeping its exit code in $rc and its output in
# $tmp/out and $tmp/err.
run() {
    "$nabla" "$@" > "$tmp/out" 2> "$tmp/err"
    rc=$?
}

# expect_rc CODE WHAT: the last run exited with CODE.
expect_rc() {
    if [ "$rc" -eq "$1" ]; then pass; else fail "$2: exit $rc, expected $1; stderr: $(head -c 300 "$tmp/err")"; fi
}

# expect_error CODE WHAT [TEXT]: the last run exited with CODE, wrote nothing
# on stdout and exactly one line on stderr, starting "nabla " and holding
# TEXT when given.  Every error line is "nabla: ..." or "nabla VERB: ...".
expect_error() {
    lines=$(wc -l < "$tmp/err")
    if [ "$rc" -ne "$1" ]; then
        fail "$2: exit $rc, expected $1; stderr: $(head -c 300 "$tmp/err")"
    elif [ "$lines" -ne 1 ] || [ -s "$tmp/out" ]; then
        fail "$2: expected one line on stderr and none on stdout, got $lines: $(head -c 300 "$tmp/err")"
    elif ! grep -q '^nabla[ :]' "$tmp/err"; then
        fail "$2: the error line does not start with 'nabla': $(cat "$tmp/err")"
    elif [ -n "${3:-}" ] && ! grep -qF -- "$3" "$tmp/err"; then
        fail "$2: the error line lacks '$3': $(cat "$tmp/err")"
    else
        pass
    fi
}

# expect_out TEXT WHAT: the last run's stdout holds the line TEXT.
expect_out() {
    if grep -qxF -- "$1" "$tmp/out"; then pass; else fail "$2: no line '$1' in the output"; fi
}

# ---- reading safetensors files with od -----------------------------------

# st_header FILE: the JSON header, on one line without blanks.
st_header() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    tail -c +9 "$1" | head -c "$n" | tr -d ' \n'
}

# st_entry FILE NAME: the entry's fields ("dtype":"F32","shape":[2,3],...).
st_entry() {
    st_header "$1" | sed -n "s/.*\"$2\":{\([^}]*\)}.*/\1/p"
}

# st_value FILE NAME INDEX: element INDEX of an F32 or F64 entry.
st_value() {
    entry=$(st_entry "$1" "$2")
    dtype=$(echo "$entry" | sed -n 's/.*"dtype":"\([A-Z0-9]*\)".*/\1/p')
    start=$(echo "$entry" | sed -n 's/.*"data_offsets":\[\([0-9]*\),.*/\1/p')
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    case $dtype in
        F32) size=4 ;;
        F64) size=8 ;;
        *) echo "nan"; return ;;
    esac
    od -An -tf$size -j $((8 + n + start + size * $3)) -N$size "$1" | tr -d ' '
}

# expect_value FILE NAME INDEX VALUE TOL WHAT: |got - VALUE| <= TOL max(1, |VALUE|).
expect_value() {
    got=$(st_value "$1" "$2" "$3")
    if awk -v a="$got" -v b="$4" -v tol="$5" 'BEGIN {
            d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1
            exit !(a != "" && d <= tol * m) }'; then
        pass
    else
        fail "$6: $2[$3] is '$got', expected $4"
    fi
}

# ---- the tool itself -------------------------------------------------------

if [ ! -x "$nabla" ]; then
    echo "FAIL: $nabla is not built"
    echo "0 passed, 1 failed"
    exit 1
fi

run --version
expect_rc 0 "--version"
if grep -qx 'nabla [0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*' "$tmp/out"; then pass; else fail "--version: $(cat "$tmp/out")"; fi

run --help
expect_rc 0 "--help"
for verb in summary forward gradcheck graph; do
    if grep -q "^  $verb " "$tmp/out"; then pass; else fail "--help does not list $verb"; fi
done

# Each verb's help names each of its flags.
check_help() {
    verb=$1; shift
    run "$verb" --help
    expect_rc 0 "$verb --help"
    for flag in "$@"; do
        if grep -q -- "--$flag" "$tmp/out"; then pass; else fail "$verb --help does not describe --$flag"; fi
    done
}
check_help summary dtype json
check_help eval weights data batch-size json
check_help predict weights top json
check_help forward input out weights labels grad train dtype seed
check_help gradcheck weights batch seed max-elems eps eval
check_help graph help

run help gradcheck
expect_rc 0 "help gradcheck"

# ---- usage errors: exit 2, one line ----------------------------------------

tiny="$data/tiny.json"

run
expect_error 2 "no verb" "nabla: no verb given"
run frobnicate
expect_error 2 "unknown verb" "nabla: unknown verb 'frobnicate' (see nabla --help)"
run --frob
expect_error 2 "unknown top-level option" "unknown option --frob"
run forward "$tiny" --frob --input x --out y
expect_error 2 "unknown option" "nabla forward: unknown option --frob (see nabla forward --help)"
run summary
expect_error 2 "summary without a model" "nabla summary: missing argument"
run summary "$tiny" "$tiny"
expect_error 2 "summary with two models" "unexpected argument"
run summary "$tiny" --dtype f16
expect_error 2 "--dtype f16" "nabla summary: --dtype: 'f16' is not a dtype (f32 or f64)"
run summary "$tiny" --dtype
expect_error 2 "--dtype without a value" "option --dtype needs a value"
run gradcheck "$tiny" --batch 0
expect_error 2 "--batch 0" "nabla gradcheck: --batch: '0' is not an integer from 1"
run gradcheck "$tiny" --batch abc
expect_error 2 "--batch abc" "--batch: 'abc' is not an integer"
run gradcheck "$tiny" --batch=3x
expect_error 2 "--batch=3x" "--batch: '3x' is not an integer"
run gradcheck "$tiny" --max-elems -1
expect_error 2 "--max-elems -1" "--max-elems: '-1'"
run gradcheck "$tiny" --seed -5
expect_error 2 "--seed -5" "--seed: '-5'"
run gradcheck "$tiny" --eps 0
expect_error 2 "--eps 0" "nabla gradcheck: --eps: '0' is not a positive number"
run gradcheck "$tiny" --eval=yes
expect_error 2 "a flag given a value" "option --eval takes no value"
run forward "$tiny" --out "$tmp/o.safetensors"
expect_error 2 "forward without --input" "missing --input"
run forward "$tiny" --input "$data/tiny-input.safetensors"
expect_error 2 "forward without --out" "missing --out"
run forward "$tiny" --input "$data/tiny-input.safetensors" --out "$tmp/o.safetensors" --grad
expect_error 2 "--grad without --labels" "--grad needs --labels"
run graph "$tmp/no-such-model.json"
expect_error 2 "a missing model file" "no-such-model.json"

# ---- summary ---------------------------------------------------------------

# The course's networks and their parameter counts (Keras's and PyTorch's).
for spec in keras-cnn:93,322 lenet:106,154 cnn3:98,442 mlp:567,434 binary:6,433 dropout-net:923,116; do
    name=${spec%%:*}
    total=${spec#*:}
    run summary "$models/$name.json"
    expect_rc 0 "summary $name"
    expect_out "Total params: $total" "summary $name"
    expect_out "Trainable params: $total" "summary $name"
    expect_out "Non-trainable params: 0" "summary $name"
done

run summary "$models/resnet-mini.json"
expect_rc 0 "summary resnet-mini"
if grep -q "Connected to" "$tmp/out"; then pass; else fail "summary resnet-mini: no 'Connected to' column"; fi
if grep -q '^Total params: [0-9][0-9,]*$' "$tmp/out"; then pass; else fail "summary resnet-mini: no total"; fi

# tiny: conv 2x1x3x3 + 2, linear 8x3 + 3; activations 2*4*4 + 2*2*2 + 8 + 3.
run summary "$tiny"
expect_rc 0 "summary tiny"
expect_out 'Model: "tiny"' "summary tiny"
expect_out "Total params: 47" "summary tiny"
expect_out "Activations per example: 51 values (204 B in f32)" "summary tiny"
expect_out "Parameter memory: 47 values (188 B in f32)" "summary tiny"
if grep -q '^conv (conv2d+relu) *\[2, 4, 4\] *20   out_channels=2, kernel_size=3$' "$tmp/out"; then pass; else fail "summary tiny: no conv row"; fi
if grep -q '^fc (linear) *\[3\] *27   out_features=3$' "$tmp/out"; then pass; else fail "summary tiny: no fc row"; fi
if grep -q '^2 (flatten) *\[8\] *0$' "$tmp/out"; then pass; else fail "summary tiny: no flatten row, or settings on it"; fi
run summary "$tiny" --dtype f64
expect_out "Parameter memory: 47 values (376 B in f64)" "summary tiny --dtype f64"

# Batch norm's buffers are not trainable: conv 4x3x3x3, two batch norms of
# 4 channels (weight, bias; running mean and variance), linear 4 + 1.
run summary "$data/bn.json"
expect_out "Total params: 145" "summary bn"
expect_out "Trainable params: 129" "summary bn"
expect_out "Non-trainable params: 16" "summary bn"
if grep -q '^bn1 (batch_norm) *\[4, 8, 8\] *16$' "$tmp/out"; then pass; else fail "summary bn: no bn1 row"; fi

# Grouped and depthwise convolutions show their settings (dilation too:
# test_model.c, test_layer_settings), in the
# table, its JSON and the graph.
run summary "$models/mobilenet.json"
if grep -q '^dw2 (conv2d) *\[32, 14, 14\] *288   out_channels=32, kernel_size=3, stride=2, padding=1, bias=false, groups=32$' "$tmp/out"; then pass; else fail "summary mobilenet: no dw2 row with its groups"; fi
run summary "$models/mobilenet.json" --json
if grep -qF '"name":"dw2","type":"conv2d","activation":null,"output_shape":[32,14,14],"params":288,"trainable":true,"settings":"out_channels=32, kernel_size=3, stride=2, padding=1, bias=false, groups=32"' "$tmp/out"; then pass; else fail "summary mobilenet --json: no dw2 with its groups"; fi
run graph "$models/mobilenet.json"
expect_out '    L9 [label="dw2 (conv2d)\n[32, 14, 14]\nout_channels=32, kernel_size=3, stride=2, padding=1, bias=false, groups=32"];' "graph mobilenet"

# Every malformed model: exit 2 and one line naming the file.
nbad=0
for f in "$bad"/*.json; do
    [ -e "$f" ] || continue
    nbad=$((nbad + 1))
    run summary "$f"
    expect_error 2 "summary $(basename "$f")" "$(basename "$f")"
done
if [ "$nbad" -gt 0 ]; then pass; else fail "no models in $bad"; fi

# ---- models by name ----------------------------------------------------------

# A MODEL that is not a file and has no '/' is NAME.json in NABLA_MODELS,
# then in the installed models' directory ($pkgdatadir/models).
NABLA_MODELS=$models
export NABLA_MODELS
run summary lenet
expect_rc 0 "summary lenet from NABLA_MODELS"
expect_out "Total params: 106,154" "summary lenet from NABLA_MODELS"
run summary lenet.json
expect_out "Total params: 106,154" "summary lenet.json from NABLA_MODELS"
run graph resnet-mini
expect_rc 0 "graph resnet-mini from NABLA_MODELS"
run summary no-such-net
expect_error 2 "a name found nowhere" \
    "nabla summary: no model 'no-such-net': not a file, nor $models/no-such-net.json (NABLA_MODELS), nor "
if [ -n "${pkgdatadir:-}" ]; then
    if grep -qF "nor $pkgdatadir/models/no-such-net.json" "$tmp/err"; then pass; else fail "the error does not name the installed models: $(cat "$tmp/err")"; fi
fi
# Every verb taking a model, through the same lookup.
NABLA_MODELS=$data
run gradcheck tiny
expect_rc 0 "gradcheck tiny from NABLA_MODELS"
run forward tiny --input "$data/tiny-input.safetensors" --out "$tmp/by-name.safetensors"
expect_rc 0 "forward tiny from NABLA_MODELS"
# An empty NABLA_MODELS is no directory; a path is never looked up.
NABLA_MODELS=
run summary no-such-net
expect_error 2 "a name with NABLA_MODELS empty" "no model 'no-such-net': not a file, nor "
if grep -q "(NABLA_MODELS)" "$tmp/err"; then fail "an empty NABLA_MODELS was searched: $(cat "$tmp/err")"; else pass; fi
NABLA_MODELS=$models
run summary ./lenet.json
expect_error 2 "a path that is no file" "./lenet.json"
unset NABLA_MODELS

# ---- forward ---------------------------------------------------------------

w="$data/tiny-weights.safetensors"
x="$data/tiny-input.safetensors"
y="$data/tiny-labels.safetensors"
o="$tmp/out.safetensors"

# The expected values are PyTorch's, in float64 (tests/data/cli/make-fixtures.py).
run forward "$tiny" --weights "$w" --input "$x" --out "$o"
expect_rc 0 "forward"
expect_value "$o" output 0 -0.229469556 1e-5 "forward"
expect_value "$o" output 5 -0.522897342 1e-5 "forward"
if [ -z "$(st_entry "$o" loss)" ] && [ -z "$(st_entry "$o" grad.input)" ]; then pass; else fail "forward without labels wrote a loss or gradients"; fi
if st_entry "$o" output | grep -q '"dtype":"F32","shape":\[2,3\]'; then pass; else fail "forward: output is not F32 [2, 3]: $(st_entry "$o" output)"; fi

run forward "$tiny" --weights "$w" --input "$x" --labels "$y" --grad --out "$o"
expect_rc 0 "forward --grad"
expect_value "$o" loss 0 0.908719979 1e-5 "forward --grad"
expect_value "$o" grad.input 7 -0.0523319887 1e-5 "forward --grad"
expect_value "$o" grad.input 10 -0.0278154783 1e-5 "forward --grad"
expect_value "$o" grad.conv.weight 1 0.126164122 1e-5 "forward --grad"
expect_value "$o" grad.conv.bias 1 -0.222090829 1e-5 "forward --grad"
expect_value "$o" grad.fc.weight 2 0.000629396307 1e-5 "forward --grad"
expect_value "$o" grad.fc.bias 1 0.21569862 1e-5 "forward --grad"
names=$(st_header "$o" | grep -o '"[a-z.]*":{' | tr -d '":{' | sort | tr '\n' ' ')
if [ "$names" = "grad.conv.bias grad.conv.weight grad.fc.bias grad.fc.weight grad.input loss output " ]; then
    pass
else
    fail "forward --grad wrote $names"
fi

run forward "$tiny" --weights "$w" --input "$x" --labels "$data/tiny-labels-i32.safetensors" --dtype f64 --out "$o"
expect_rc 0 "forward --dtype f64"
expect_value "$o" loss 0 0.908719979 1e-8 "forward --dtype f64"
expect_value "$o" output 4 -0.922844578 1e-8 "forward --dtype f64"
if st_entry "$o" output | grep -q '"dtype":"F64"'; then pass; else fail "forward --dtype f64 did not write F64"; fi

# The default initialisation depends on --seed, and only on it.
run forward "$tiny" --input "$x" --out "$tmp/s1.safetensors" --seed 1
expect_rc 0 "forward --seed 1"
run forward "$tiny" --input "$x" --out "$tmp/s1b.safetensors" --seed 1
run forward "$tiny" --input "$x" --out "$tmp/s2.safetensors" --seed 2
if cmp -s "$tmp/s1.safetensors" "$tmp/s1b.safetensors"; then pass; else fail "forward --seed 1 twice differs"; fi
if ! cmp -s "$tmp/s1.safetensors" "$tmp/s2.safetensors"; then pass; else fail "forward --seed 1 and 2 agree"; fi

# Bad inputs: exit 2, one line.
run forward "$tiny" --weights "$w" --input "$data/tiny-input-bad.safetensors" --out "$o"
expect_error 2 "forward with a [2, 1, 5, 5] input" 'has shape [2, 1, 5, 5]; the model "tiny" takes [N, 1, 6, 6]'
run forward "$tiny" --weights "$w" --input "$x" --labels "$data/tiny-labels-bad.safetensors" --out "$o"
expect_error 2 "forward with label 3 of 3 classes" "labels[1] is 3, not a class index from 0 to 2"
run forward "$tiny" --weights "$w" --input "$y" --out "$o"
expect_error 2 "forward with an input file without \"input\"" "input"
run forward "$tiny" --weights "$x" --input "$x" --out "$o"
expect_error 2 "forward with the wrong weights" "conv.weight"
head -c 100 "$w" > "$tmp/truncated.safetensors"
run forward "$tiny" --weights "$tmp/truncated.safetensors" --input "$x" --out "$o"
expect_error 2 "forward with truncated weights" "truncated.safetensors"
run forward "$tiny" --weights "$w" --input "$tmp/none.safetensors" --out "$o"
expect_error 2 "forward with a missing input file" "none.safetensors"
run forward "$tiny" --weights "$w" --input "$x" --out "$tmp/no-such-dir/o.safetensors"
expect_error 1 "forward writing into a missing directory" "no-such-dir"

# ---- gradcheck --------------------------------------------------------------

run gradcheck "$tiny" --seed 3
expect_rc 0 "gradcheck tiny"
if tail -n 1 "$tmp/out" | grep -q '^ok: all 5 tensors agree'; then pass; else fail "gradcheck tiny: $(tail -n 1 "$tmp/out")"; fi
for t in input conv.weight conv.bias fc.weight fc.bias; do
    if grep -q "^$t .* ok$" "$tmp/out"; then pass; else fail "gradcheck tiny: no line for $t"; fi
done
run gradcheck "$tiny" --eval --batch 3 --max-elems 0 --weights "$w"
expect_rc 0 "gradcheck tiny --eval --max-elems 0"
# Batch norm and dropout2d in train mode; the batch statistics of bn2 need
# more than one example.
run gradcheck "$data/bn.json" --batch 3
expect_rc 0 "gradcheck bn"
# The dropout mask must be the same at every evaluation, and the buffers
# are not checked: the input and 7 parameters.
if tail -n 1 "$tmp/out" | grep -q '^ok: all 8 tensors agree'; then pass; else fail "gradcheck bn: $(tail -n 1 "$tmp/out")"; fi
if grep -q 'running_' "$tmp/out"; then fail "gradcheck bn checks buffers"; else pass; fi
run gradcheck "$data/bn.json" --batch 1
expect_error 2 "gradcheck bn --batch 1" "batch statistics need more"
run gradcheck "$data/bn.json" --batch 1 --eval
expect_rc 0 "gradcheck bn --batch 1 --eval"
for m in binary dropout-net; do
    run gradcheck "$models/$m.json" --max-elems 16
    expect_rc 0 "gradcheck $m"
done

# ---- graph ------------------------------------------------------------------

for m in "$tiny" "$models/lenet.json" "$models/resnet-mini.json"; do
    run summary "$m"
    layers=$(sed -n 's/^\([A-Za-z0-9_.-]*\) ([a-z0-9_]*) .*/\1/p' "$tmp/out" | grep -v -e '^Layer$' -e '^input$')
    run graph "$m"
    expect_rc 0 "graph $m"
    if head -n 1 "$tmp/out" | grep -q '^digraph '; then pass; else fail "graph $m does not start with digraph"; fi
    for l in $layers; do
        if grep -qF "label=\"$l (" "$tmp/out"; then pass; else fail "graph $m does not mention $l"; fi
    done
    # Graphviz is not needed, but when it is there it must accept the graph.
    if command -v dot > /dev/null 2>&1; then
        if dot -Tsvg "$tmp/out" > /dev/null 2>&1; then pass; else fail "dot rejects the graph of $m"; fi
    fi
done
# The loss hangs off the output layer: "fc" of tiny, the fourth.
run graph "$tiny"
if grep -q '^ *L3 -> loss;$' "$tmp/out"; then pass; else fail "graph tiny: the loss does not follow fc"; fi

# ---- files that are not regular, and memory limits ----------------------------

# A limit on the address space where the build allows one: AddressSanitizer
# reserves terabytes for its shadow memory and cannot start under one.
if (ulimit -v 4000000; "$nabla" --version; exit $?) > /dev/null 2>&1; then vlimit=yes; else vlimit=no; fi
# limited KB ARGS...: runs nabla ARGS under ulimit -v KB if it can, into
# $tmp/out and $tmp/err, the exit code in $rc.
limited() {
    kb=$1
    shift
    if [ "$vlimit" = yes ]; then
        (ulimit -v "$kb"; "$nabla" "$@" > "$tmp/out" 2> "$tmp/err")
    else
        "$nabla" "$@" > "$tmp/out" 2> "$tmp/err"
    fi
    rc=$?
}

# Weights, inputs, labels, images and kernels are read only from regular
# files: a device has no end, a pipe no size.  Each is refused at once with
# one line (under a limit on the address space, so that a reader that
# tried would fail instead of taking the machine's memory).
ln -s /dev/zero "$tmp/checkpoint.safetensors"
mkfifo "$tmp/fifo.safetensors"
nr() {  # nr WHAT FILE ARGS...: one line "FILE: not a regular file", exit 2
    what=$1 file=$2
    shift 2
    limited 4000000 "$@"
    expect_error 2 "$what" "$file: not a regular file"
}
nr "eval --weights /dev/zero" /dev/zero eval "$models/lenet.json" --weights /dev/zero
nr "eval --weights a symlink to /dev/zero" "$tmp/checkpoint.safetensors" \
    eval "$models/lenet.json" --weights "$tmp/checkpoint.safetensors"
nr "forward --input /dev/zero" /dev/zero forward "$tiny" --input /dev/zero --out "$o"
nr "forward --input a fifo" "$tmp/fifo.safetensors" \
    forward "$tiny" --input "$tmp/fifo.safetensors" --out "$o"
nr "forward --labels /dev/zero" /dev/zero forward "$tiny" --input "$x" --labels /dev/zero --out "$o"
nr "forward --weights /dev/urandom" /dev/urandom forward "$tiny" --weights /dev/urandom --input "$x" --out "$o"
nr "predict /dev/zero" /dev/zero predict "$tiny" --weights "$w" /dev/zero
nr "visualize --input /dev/zero" /dev/zero visualize "$tiny" --input /dev/zero --out "$tmp/vis"
nr "filter --kernel /dev/zero" "kernel file /dev/zero" filter "$top_srcdir/docs/img/sample.png" \
    --kernel /dev/zero -o "$tmp/f.png"
# A model file may come through a pipe: bounded at 16 MB.
limited 4000000 summary /dev/zero
expect_error 2 "summary /dev/zero" "/dev/zero: the file is larger than 16 MB"

# tiny's memory at batch 64 (tests/test_memory.c has the sums by hand).
run summary "$tiny"
expect_out "Training memory, batch 64 with sgd (estimated): 41.6 KiB" "summary tiny: training memory"
expect_out "  parameters 188 B, their gradients 188 B, sgd state 0 B (0 buffers per parameter)," "summary tiny: parameters"
expect_out "  input 9.0 KiB, activations 17.5 KiB, their gradients 14.8 KiB" "summary tiny: activations"
expect_out "Inference memory, batch 64 (estimated): 24.7 KiB" "summary tiny: inference memory"
if grep -q '^Memory limit: [0-9.]* [KMGT]iB (this machine.s memory)$' "$tmp/out"; then pass; else fail "summary tiny: no memory limit line: $(grep Memory "$tmp/out")"; fi
run summary "$tiny" --batch-size 10 --optimizer adam --max-memory 1G
expect_out "Training memory, batch 10 with adam (estimated): 12.2 KiB" "summary --batch-size 10 --optimizer adam"
expect_out "Memory limit: 1.0 GiB (--max-memory)" "summary --max-memory 1G"
run summary "$tiny" --max-memory 1x
expect_error 2 "summary --max-memory 1x" "--max-memory: '1x' is not a size"
NABLA_MAX_MEMORY=lots "$nabla" summary "$tiny" > "$tmp/out" 2> "$tmp/err"; rc=$?
expect_error 2 "NABLA_MAX_MEMORY=lots" "nabla: NABLA_MAX_MEMORY: 'lots' is not a size"

# NABLA_CPU: kernels by name; an unknown name is bad input, and so are
# kernels the CPU lacks (AVX-512's, when it has none).
NABLA_CPU=avx9 "$nabla" summary "$tiny" > "$tmp/out" 2> "$tmp/err"; rc=$?
expect_error 2 "NABLA_CPU=avx9" 'nabla: NABLA_CPU: unknown kernels "avx9": expected baseline, avx2 or avx512'
NABLA_CPU=baseline "$nabla" summary "$tiny" > "$tmp/out" 2> "$tmp/err"; rc=$?
expect_rc 0 "NABLA_CPU=baseline"
if grep -q '^flags.* avx512f' /proc/cpuinfo 2>/dev/null; then
    echo "test_cli: NABLA_CPU for kernels the CPU lacks skipped: this CPU has AVX-512"
else
    NABLA_CPU=avx512 "$nabla" summary "$tiny" > "$tmp/out" 2> "$tmp/err"; rc=$?
    expect_error 2 "NABLA_CPU=avx512" "kernels avx512 need a CPU with AVX-512"
fi

# A model of 9e9 parameters (36 GB) in a 4 KB file: summary and graph need
# no parameter, so they run under a 1 GB address space (or, without one,
# NABLA_MAX_MEMORY=1G); the verbs that make its parameters refuse before
# making any.
huge="$data/huge.json"
if [ "$vlimit" = yes ]; then lim=""; source="the process.s ulimit"; why="the process's address space limit"
else lim=1G; source=NABLA_MAX_MEMORY; why="the memory limit of 1.0 GiB"; fi
NABLA_MAX_MEMORY=$lim limited 1000000 summary "$huge"
expect_rc 0 "summary huge under a limit"
expect_out "Total params: 9,060,597,770" "summary huge"
if grep -q "^Memory limit: .*($source): neither training nor inference fits\$" "$tmp/out"; then pass; else fail "summary huge: $(grep 'Memory limit' "$tmp/out")"; fi
NABLA_MAX_MEMORY=$lim limited 1000000 graph "$huge"
expect_rc 0 "graph huge under a limit"
NABLA_MAX_MEMORY=$lim limited 1000000 forward "$huge" --input "$x" --out "$o"
expect_error 1 "forward huge under a limit" "huge.json: making its 9060597770 parameters and buffers in f32 needs 33.8 GiB, more than $why"
NABLA_MAX_MEMORY=8G "$nabla" gradcheck "$huge" > "$tmp/out" 2> "$tmp/err"; rc=$?
expect_error 1 "gradcheck huge under NABLA_MAX_MEMORY=8G" "needs 67.5 GiB, more than the memory limit of 8.0 GiB"

# nabla train refuses what does not fit before it trains: the parameters
# at load, then the whole step's estimate (parameters, gradients, the
# optimizer's state, a batch's activations) before the data loads.  No
# checkpoint is written.  (The optimizer's own check and the step's are the
# library's last guards: tests/test_memory.c.)
idx="$top_srcdir/tests/data/idx/raw"
for spec in "100K:making its 93322 parameters" \
            "1100K:model \"keras-cnn\": training with rmsprop on batches of 16 needs 6.1 MiB" \
            "4M:model \"keras-cnn\": training with rmsprop on batches of 16 needs 6.1 MiB"; do
    NABLA_MAX_MEMORY=${spec%%:*} "$nabla" train "$models/keras-cnn.json" --data "$idx" \
        --batch-size 16 --epochs 1 --out "$tmp/mem" > "$tmp/out" 2> "$tmp/err"; rc=$?
    if [ "$rc" -eq 1 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF -- "${spec#*:}" "$tmp/err" &&
        grep -q 'more than the memory limit of' "$tmp/err" && [ ! -e "$tmp/mem/checkpoint.safetensors" ]; then
        pass
    else
        fail "train under NABLA_MAX_MEMORY=${spec%%:*}: exit $rc: $(cat "$tmp/err")"
    fi
done

# The splits of a folder of PNGs have the same class folders, matched by
# name: one missing from test/ would shift the labels after it, an extra
# one be a class the model never learned.
cp -R "$top_srcdir/tests/data/png/shapes" "$tmp/shapes"
"$nabla" train "$models/lenet.json" --data "$tmp/shapes" --epochs 1 --batch-size 2 \
    --out "$tmp/shapes-run" > /dev/null 2>&1 || fail "train on the PNG folders"
mv "$tmp/shapes/test/dot" "$tmp/dot"
run eval "$models/lenet.json" --data "$tmp/shapes" --weights "$tmp/shapes-run/weights.safetensors"
expect_error 2 "eval with a class folder missing from test/" "$tmp/shapes/test: no class folder \"dot\" as in $tmp/shapes/train"
run train "$models/lenet.json" --data "$tmp/shapes" --epochs 1 --out "$tmp/shapes-run2"
expect_error 2 "train with a class folder missing from test/" "$tmp/shapes/test: no class folder \"dot\" as in $tmp/shapes/train"
mv "$tmp/dot" "$tmp/shapes/test/dot"
cp -R "$tmp/shapes/test/dot" "$tmp/shapes/test/zebra"
run eval "$models/lenet.json" --data "$tmp/shapes" --weights "$tmp/shapes-run/weights.safetensors"
expect_error 2 "eval with an extra class folder in test/" "$tmp/shapes/train: no class folder \"zebra\" as in $tmp/shapes/test"

# ---- stats ---------------------------------------------------------------------

check_help stats data limit
# Two 2x2 gray images, pixels 0, 51, 102, 153 and 204, 255, 255, 255: the
# mean of v / 255 is 0.625, the population std sqrt(0.134375) = 0.366572.
run stats --data "$data/stats-gray"
expect_rc 0 "stats stats-gray"
expect_out "images: 2 of [1, 2, 2]" "stats stats-gray"
expect_out "channel 0: mean 0.625000  std 0.366572" "stats stats-gray"
expect_out '"normalize": {"mean": [0.6250], "std": [0.3666]}' "stats stats-gray"
if [ -s "$tmp/err" ]; then fail "stats stats-gray wrote on stderr: $(cat "$tmp/err")"; else pass; fi
# Constant colour images, two blue (0, 51, 204) and two yellow (255, 255, 0):
# per channel the mean and std of two values.
colour="$data/colour"
run stats --data "$colour"
expect_rc 0 "stats colour"
expect_out "images: 4 of [3, 4, 4]" "stats colour"
expect_out "channel 0 (red): mean 0.500000  std 0.500000" "stats colour"
expect_out "channel 1 (green): mean 0.600000  std 0.400000" "stats colour"
expect_out "channel 2 (blue): mean 0.400000  std 0.400000" "stats colour"
expect_out '"normalize": {"mean": [0.5000, 0.6000, 0.4000], "std": [0.5000, 0.4000, 0.4000]}' "stats colour"
# --limit 1: the first image alone (blue, the first class folder), constant
# in each channel: a warning for each std of 0.
run stats --data "$colour" --limit 1
expect_rc 0 "stats --limit 1"
expect_out "images: 1 of [3, 4, 4]" "stats --limit 1"
expect_out '"normalize": {"mean": [0.0000, 0.2000, 0.8000], "std": [0.0000, 0.0000, 0.0000]}' "stats --limit 1"
if [ "$(grep -c '^nabla stats: warning: channel [012] is constant' "$tmp/err")" -eq 3 ]; then pass; else fail "stats --limit 1: $(cat "$tmp/err")"; fi
# The IDX fixture (20 images of 28x28, raw and gzipped) against its own
# bytes, summed by awk.
idx="$top_srcdir/tests/data/idx"
want=$(od -An -v -tu1 -j16 "$idx/raw/train-images-idx3-ubyte" |
    awk '{ for (i = 1; i <= NF; i++) { v = $i / 255; s += v; q += v * v; n++ } }
         END { m = s / n; printf "channel 0: mean %.6f  std %.6f", m, sqrt(q / n - m * m) }')
for d in raw gz; do
    run stats --data "$idx/$d"
    expect_rc 0 "stats idx/$d"
    expect_out "images: 20 of [1, 28, 28]" "stats idx/$d"
    expect_out "$want" "stats idx/$d"
done
# Fashion-MNIST's training images: the usual 0.2860 and 0.3530.
fashion=/usr/share/datasets/fashion-mnist
if [ -d "$fashion" ]; then
    run stats
    expect_rc 0 "stats fashion-mnist"
    expect_out "images: 60,000 of [1, 28, 28]" "stats fashion-mnist"
    expect_out '"normalize": {"mean": [0.2860], "std": [0.3530]}' "stats fashion-mnist"
else
    echo "test_cli: stats of Fashion-MNIST skipped: no $fashion"
fi
run stats --data "$tmp/none"
expect_error 2 "stats of a missing directory" "$tmp/none"
run stats --data "$top_srcdir/tests/data/png/bad/not-a-png.png"
expect_error 2 "stats of a file that is no data" "not-a-png.png"
run stats --data "$top_srcdir/tests/data/png/mixed-sizes"
expect_error 2 "stats of images of two sizes" "mixed-sizes"
run stats --data "$colour" --limit 0
expect_error 2 "stats --limit 0" "--limit: '0'"
run stats "$colour"
expect_error 2 "stats with a positional argument" "unexpected argument"

# ---- predict: colour and gray models ----------------------------------------------

# The colour images' classes are 0 blue and 1 yellow.  A colour model reads
# them as RGB and inverts nothing unless --invert: then yellow, light on its
# border, becomes (0, 0, 1), blue.
rgb="$data/rgb-tiny.json"
run train "$rgb" --data "$colour" --out "$tmp/rgb-run"
expect_rc 0 "train the colour model"
wrgb="$tmp/rgb-run/weights.safetensors"
# predicted LINE: the class the last run printed on line LINE.
predicted() { sed -n "$1p" "$tmp/out" | awk '{ print $2 }'; }
run predict "$rgb" --weights "$wrgb" "$colour/test/blue/1.png" "$colour/test/yellow/1.png"
expect_rc 0 "predict with the colour model"
if [ "$(predicted 1)" = 0 ] && [ "$(predicted 2)" = 1 ]; then pass; else fail "colour predict: $(cat "$tmp/out")"; fi
run predict "$rgb" --weights "$wrgb" --invert "$colour/test/blue/1.png" "$colour/test/yellow/1.png"
expect_rc 0 "predict --invert with the colour model"
if [ "$(predicted 1)" = 0 ] && [ "$(predicted 2)" = 0 ]; then pass; else fail "colour predict --invert: $(cat "$tmp/out")"; fi
# Gray PNGs (gray, gray and alpha) and RGBA ones are read as RGB too.
run predict "$rgb" --weights "$wrgb" "$top_srcdir/tests/data/png/gray8.png" \
    "$top_srcdir/tests/data/png/ga8.png" "$top_srcdir/tests/data/png/rgba8.png"
expect_rc 0 "predict gray and RGBA PNGs with the colour model"
if [ "$(wc -l < "$tmp/out")" -eq 3 ]; then pass; else fail "colour predict of 3 PNGs: $(cat "$tmp/out")"; fi
run predict "$rgb" --weights "$wrgb" --invert --no-invert "$colour/test/blue/1.png"
expect_error 2 "predict --invert --no-invert" "--invert and --no-invert exclude each other"
# A gray model of the same images (gray 1/3 blue, 2/3 yellow) inverts a
# light-bordered image by default, as before: yellow becomes 1/3, blue;
# --no-invert keeps it yellow.
sed -e 's/"input": \[3, 4, 4\]/"input": [1, 4, 4]/' -e 's/"rgb-tiny"/"gray-tiny"/' "$rgb" > "$tmp/gray-tiny.json"
run train "$tmp/gray-tiny.json" --data "$colour" --out "$tmp/gray-run"
expect_rc 0 "train the gray model"
wgray="$tmp/gray-run/weights.safetensors"
run predict "$tmp/gray-tiny.json" --weights "$wgray" "$colour/test/blue/1.png" "$colour/test/yellow/1.png"
expect_rc 0 "predict with the gray model"
if [ "$(predicted 1)" = 0 ] && [ "$(predicted 2)" = 0 ]; then pass; else fail "gray predict: $(cat "$tmp/out")"; fi
run predict "$tmp/gray-tiny.json" --weights "$wgray" --no-invert "$colour/test/blue/1.png" "$colour/test/yellow/1.png"
if [ "$(predicted 1)" = 0 ] && [ "$(predicted 2)" = 1 ]; then pass; else fail "gray predict --no-invert: $(cat "$tmp/out")"; fi
# The colour model's weights do not fit the gray model.
run predict "$tmp/gray-tiny.json" --weights "$wrgb" "$colour/test/blue/1.png"
expect_error 2 "predict with the colour model's weights in a gray model" "fc.weight"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
