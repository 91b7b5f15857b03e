#!/usr/bin/env bash
# Builds a libFuzzer harness from fuzz/ straight from the library's sources
# (clang, AddressSanitizer + UBSan) and runs it.
#   scripts/fuzz.sh safetensors [seconds]   the safetensors reader (default 60 s)
#   scripts/fuzz.sh model [seconds]         the JSON model loader
#   scripts/fuzz.sh idx [seconds]           the IDX reader (raw and gzipped)
#   scripts/fuzz.sh png [seconds]           the PNG reader and the resizer
#   scripts/fuzz.sh npz [seconds]           the .npz reader (zip of .npy)
#   scripts/fuzz.sh cifar [seconds]         the CIFAR-10 and CIFAR-100 records
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
pkgs=(libcjson openblas libpng zlib libzip)

usage() {
    echo "usage: scripts/fuzz.sh safetensors|model|idx|png|npz|cifar|checkpoint [seconds]" >&2
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

# npy <dict> <data as printf escapes>: a .npy array, format 1.0, its header
# not padded.
npy() {
    local dict=$1 data=$2 n=$((${#1} + 1))
    # shellcheck disable=SC2059  # the format is the escape
    printf "\\x93NUMPY\\x01\\x00\\x$(printf %02x $((n & 255)))\\x$(printf %02x $((n >> 8)))"
    printf '%s\n' "$dict"
    printf '%b' "$data"
}

# Seeds: the fixtures (as numpy.savez and savez_compressed write them), an
# archive of no entries (its end of central directory record alone), and
# arrays for the harness to zip, separated by "NPZ|" (see fuzz/fuzz_npz.c).
fuzz_npz() {
    local seconds=$1 c f h
    build npz
    c=$out/corpus-npz
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        for f in tests/data/npz/*.npz; do cp "$f" "$c/"; done
        printf 'PK\005\006%018d' 0 | tr 0 '\000' > "$c/empty-archive"
        h="'fortran_order': False, 'shape':"
        { npy "{'descr': '|u1', $h (2, 2, 2), }" '\x00\x01\x02\x03\xfc\xfd\xfe\xff'
          printf 'NPZ|'; npy "{'descr': '|u1', $h (2,), }" '\x01\x00'; } > "$c/arrays-u8"
        { npy "{'descr': '<f4', $h (1, 4), }" '\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00\x3f\x00\x00\x80\x3e'
          printf 'NPZ|'; npy "{'descr': '<i8', $h (1, 1), }" '\x03\x00\x00\x00\x00\x00\x00\x00'
          printf 'NPZ|'; npy "{'descr': '<f4', $h (1, 1, 2, 2), }" '\x00\x00\x80\x3f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
          printf 'NPZ|'; npy "{'descr': '<u2', $h (1,), }" '\x02\x00'; } > "$c/arrays-f4-valid"
        { npy "{'descr': '|u1', $h (1, 2, 2, 3), }" '\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c'
          printf 'NPZ|'; npy "{'descr': '|i1', $h (1,), }" '\x05'; } > "$c/arrays-channels-last"
        { npy "{'descr': '<f8', $h (1, 3, 1, 1), }" '\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe0\x3f'
          printf 'NPZ|'; npy "{'descr': '<u4', $h (1,), }" '\x09\x00\x00\x00'; } > "$c/arrays-f8-colour"
    fi
    run npz "$seconds" -dict=fuzz/npz.dict -max_len=4096
}

# Seeds: records of CIFAR-10 (3,073 bytes) and CIFAR-100 (3,074), one and
# two, with labels in range and out of it.
fuzz_cifar() {
    local seconds=$1 c
    build cifar
    c=$out/corpus-cifar
    if [ ! -d "$c" ]; then
        mkdir -p "$c"
        { printf '\x03'; head -c 3072 /dev/zero | tr '\000' '\200'; } > "$c/cifar10-one"
        { cat "$c/cifar10-one"; printf '\x09'; head -c 3072 /dev/zero; } > "$c/cifar10-two"
        { printf '\x0a'; head -c 3072 /dev/zero; } > "$c/cifar10-bad-label"
        { printf '\x13\x63'; head -c 3072 /dev/zero | tr '\000' '\001'; } > "$c/cifar100-one"
    fi
    run cifar "$seconds" -max_len=8192
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
    npz) fuzz_npz "$seconds" ;;
    cifar) fuzz_cifar "$seconds" ;;
    checkpoint) fuzz_checkpoint "$seconds" ;;
    *) usage ;;
esac
