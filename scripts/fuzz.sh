#!/usr/bin/env bash
# Builds a libFuzzer harness from fuzz/ straight from the library's sources
# (clang, AddressSanitizer + UBSan) and runs it.
#   scripts/fuzz.sh safetensors [seconds]   the safetensors reader (default 60 s)
#   scripts/fuzz.sh model [seconds]         the JSON model loader
#   scripts/fuzz.sh idx [seconds]           the IDX reader (raw and gzipped)
#   scripts/fuzz.sh png [seconds]           the PNG reader and the resizer
#   scripts/fuzz.sh checkpoint [seconds]    resuming a trainer from edited
#                                           checkpoint metadata
# Everything goes to build-fuzz/: the binary fuzz_<target>, the corpus
# corpus-<target>/ (seeded on the first run, kept and grown after) and any
# crashing input in crashes-<target>/.  Rerun one with
#   build-fuzz/fuzz_<target> build-fuzz/crashes-<target>/crash-...
# Each target is a function fuzz_<target> below.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

CC=${CC:-clang}
out=build-fuzz
# The library's dependencies, as configure.ac checks them.
pkgs=(libcjson openblas libpng zlib)

usage() {
    echo "usage: scripts/fuzz.sh safetensors|model|idx|png|checkpoint [seconds]" >&2
    exit 2
}

# build <target>: fuzz/fuzz_<target>.c and the whole library into one binary.
build() {
    local target=$1
    mkdir -p "$out"
    echo "fuzz: building $out/fuzz_$target"
    # shellcheck disable=SC2046  # pkg-config's flags are words
    "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -std=c11 -D_POSIX_C_SOURCE=200809L -I include -I lib \
        lib/*.c lib/*/*.c "fuzz/fuzz_$target.c" \
        $(pkg-config --cflags --libs "${pkgs[@]}") -lm -o "$out/fuzz_$target"
}

# run <target> <seconds> [libFuzzer options...]: fuzzes corpus-<target>/.
run() {
    local target=$1 seconds=$2
    shift 2
    mkdir -p "$out/crashes-$target"
    echo "fuzz: running fuzz_$target for ${seconds}s"
    "$out/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$out/crashes-$target/" "$@" "$out/corpus-$target"
}

# le64 <n>: n as 8 little-endian bytes.
le64() {
    local n=$1 i
    for i in 0 1 2 3 4 5 6 7; do
        # shellcheck disable=SC2059  # the format is the escape
        printf "\\x$(printf %02x $(((n >> (8 * i)) & 255)))"
    done
}

# st_seed <file> <header> <data as printf escapes>: a safetensors file.
st_seed() {
    local file=$1 header=$2 data=$3
    { le64 "${#header}"; printf '%s' "$header"; printf '%b' "$data"; } > "$file"
}

fuzz_safetensors() {
    local seconds=$1 c
    build safetensors
    c=$out/corpus-safetensors
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        cp tests/data/safetensors/*.safetensors "$c/" 2>/dev/null || true
        st_seed "$c/empty.st" '{}' ''
        st_seed "$c/f32.st" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' \
            '\x00\x00\x80\x3f\x00\x00\x00\xc0'
        st_seed "$c/scalar.st" '{"__metadata__":{"format":"pt"},"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}  ' \
            '\x00\x00\x00\x00\x00\x00\xf0\x3f'
        st_seed "$c/mixed.st" '{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]},"i":{"dtype":"I64","shape":[1],"data_offsets":[6,14]},"k":{"dtype":"BOOL","shape":[0,3],"data_offsets":[14,14]},"u":{"dtype":"U8","shape":[2],"data_offsets":[14,16]},"j":{"dtype":"I32","shape":[1],"data_offsets":[16,20]},"m":{"dtype":"I16","shape":[1],"data_offsets":[20,22]},"n":{"dtype":"I8","shape":[1],"data_offsets":[22,23]}}' \
            '\x00\x3c\x01\x00\x80\x3f\xff\xff\xff\xff\xff\xff\xff\xff\x01\x02\x00\x00\x00\x80\xff\x7f\x80'
    fi
    run safetensors "$seconds" -dict=fuzz/safetensors.dict -max_len=4096
}

fuzz_model() {
    local seconds=$1 c f
    build model
    c=$out/corpus-model
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        for f in models/*.json; do cp "$f" "$c/good-$(basename "$f")"; done
        for f in tests/data/models-bad/*.json; do cp "$f" "$c/bad-$(basename "$f")"; done
    fi
    run model "$seconds" -dict=fuzz/model.dict -max_len=4096
}

fuzz_idx() {
    local seconds=$1 c f
    build idx
    c=$out/corpus-idx
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        for f in tests/data/idx/bad/* tests/data/idx/gz/*.gz tests/data/idx/raw/t10k-labels-idx1-ubyte; do
            cp "$f" "$c/$(basename "$(dirname "$f")")-$(basename "$f")"
        done
    fi
    run idx "$seconds" -max_len=4096
}

fuzz_png() {
    local seconds=$1 c f
    build png
    c=$out/corpus-png
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        for f in tests/data/png/*.png tests/data/png/bad/*.png; do
            cp "$f" "$c/$(basename "$(dirname "$f")")-$(basename "$f")"
        done
        cp tests/data/png/shapes/train/ring/a.png "$c/ring-interlaced.png"
    fi
    run png "$seconds" -dict=fuzz/png.dict -max_len=4096
}

# Inputs are edits of a real checkpoint's metadata, a line "key=value" or
# "key" (left out) each; the seeds include other positions that agree with
# themselves, so that resumes which succeed are mutated too.
fuzz_checkpoint() {
    local seconds=$1 c
    build checkpoint
    c=$out/corpus-checkpoint
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        printf '' > "$c/as-written"
        printf 'epoch=-1\n' > "$c/epoch-negative"
        printf 'batch=1000000\n' > "$c/batch-huge"
        printf 'steps=-99\nseen=-7\n' > "$c/steps-seen"
        printf 'history\n' > "$c/no-history"
        printf 'shuffle_rng=%064d\n' 0 > "$c/rng-zero"
        printf 'batch=0\nsteps=5\nseen=0\ncorrect=0\nloss_sum=0\n' > "$c/epoch-start"
        printf 'batch=5\nsteps=10\nseen=17\ncorrect=9\nloss_sum=12.5\n' > "$c/before-validation"
        printf 'epoch=2\nbatch=1\nsteps=11\nseen=4\ncorrect=2\nloss_sum=3.5\nhistory=1,0.5,1,0.5,0.01,1;0.9,0.75,inf,0.5,0.01,2\n' > "$c/epoch-3"
        printf 'epoch=3\nbatch=0\nsteps=15\nseen=0\ncorrect=0\nloss_sum=0\nhistory=1,0.5,1,0.5,0.01,1;1,0.5,1,0.5,0.01,1;1,0.5,1,0.5,0.01,1\nepochs=4\n' > "$c/done"
        printf 'model_digest\n' > "$c/predates"
    fi
    run checkpoint "$seconds" -dict=fuzz/checkpoint.dict -max_len=4096
}

target=${1:-}
seconds=${2:-60}
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
case "$target" in
    safetensors) fuzz_safetensors "$seconds" ;;
    model) fuzz_model "$seconds" ;;
    idx) fuzz_idx "$seconds" ;;
    png) fuzz_png "$seconds" ;;
    checkpoint) fuzz_checkpoint "$seconds" ;;
    *) usage ;;
esac
