#!/bin/sh
# test_readme.sh - runs the commands of README.md and docs/*.md as they are
# written, each with sh -c in a directory laid out as a clone (models/,
# docs/, examples/, tests/ and bench/ of the source tree), with the build's
# nabla first on PATH and NABLA_MODELS at the source's models/, as the
# quick start's install leaves them; each must exit 0.  The commands are
# read from the files themselves, so that they cannot change without being
# run:
#   - README.md: every line of the ```sh blocks under "The `nabla`
#     command", comments cut;
#   - docs/*.md: every "$ " line of a fenced block (with its "\"
#     continuations), or every line of a ```sh block that has none.
# Before them, the quick start's training (scripts/train.sh trains LeNet
# into runs/lenet/) stands in as one epoch.
#
# Not run, each said with SKIP and its reason: commands of several
# processes (mpirun: tests/test_mpi.sh runs those), of CIFAR-10 (not in
# Debian), of PyTorch (python3, which the suite never needs), of the
# benchmarks (bench/: long, and their figures are no test), of nabla serve
# and its clients (they run until stopped: tests/test_serve.sh runs them),
# and a pipe into a program that is missing.
#
# Needs top_srcdir and top_builddir (make check sets both) and Fashion-MNIST.
# Prints one line per failed command and ends with "N passed, N failed,
# N skipped"; exits 77 only when every command was skipped.

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
src=$(cd "$top_srcdir" && pwd) || exit 99
build=$(cd "$top_builddir" && pwd) || exit 99
data=/usr/share/datasets/fashion-mnist
if [ ! -d "$data" ]; then
    echo "test_readme: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_readme.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

# FILE<TAB>COMMAND, one a line, in the order of the files.
awk '/^## The `nabla` command/ {sec = 1; next}
     /^## / {sec = 0}
     sec && /^```sh$/ {on = 1; next}
     on && /^```/ {on = 0}
     on {sub(/[[:space:]][[:space:]]*#.*$/, ""); if ($0 != "") print FILENAME "\t" $0}' \
    "$src/README.md" | sed "s|^$src/||" > "$tmp/commands"
if [ "$(grep -c "	nabla " "$tmp/commands")" -lt 5 ]; then
    echo "FAIL: README.md has no block of nabla commands under \"The \`nabla\` command\""
    exit 1
fi
for f in "$src"/docs/*.md; do
    awk -v file="docs/${f##*/}" '
        function flush() { if (cmd != "") print file "\t" cmd; cmd = "" }
        /^```/ {
            if (!on) { on = 1; sh = $0 == "```sh"; n = 0; prompt = 0; next }
            flush()
            # A ```sh block without prompts: its lines are the commands.
            for (i = 1; !prompt && i <= n; i++) print file "\t" line[i]
            on = 0; next
        }
        !on { next }
        cont { cmd = cmd " " substr($0, match($0, /[^ ]/)); cont = sub(/ *\\$/, "", cmd); if (!cont) flush(); next }
        /^\$ / { prompt = 1; cmd = substr($0, 3); cont = sub(/ *\\$/, "", cmd); if (!cont) flush(); next }
        sh && !/^#/ && $0 != "" { s = $0; sub(/[[:space:]][[:space:]]*#.*$/, "", s); line[++n] = s }
    ' "$f"
done >> "$tmp/commands"

mkdir "$tmp/clone"
for d in models docs examples tests bench; do
    ln -s "$src/$d" "$tmp/clone/$d"
done
cd "$tmp/clone" || exit 99
PATH=$build/tools:$PATH
NABLA_MODELS=$src/models
export PATH NABLA_MODELS

passed=0
failed=0
skipped=0
if ! nabla train models/lenet.json --epochs 1 > "$tmp/out" 2>&1; then
    echo "FAIL: the quick start's training: $(tail -c 300 "$tmp/out")"
    exit 1
fi
skip() {
    echo "SKIP: $file: $line ($1)"
    skipped=$((skipped + 1))
}
tab=$(printf '\t')
while IFS="$tab" read -r file line; do
    case $line in
        *mpirun*) skip "several processes: tests/test_mpi.sh runs those"; continue ;;
        *cifar*) skip "needs CIFAR-10, which Debian does not package"; continue ;;
        *python3*|*torch-*) skip "needs PyTorch, which the suite never does"; continue ;;
        *bench/*) skip "a benchmark"; continue ;;
        *"nabla serve"*|*curl*) skip "a server or its client: tests/test_serve.sh runs them"; continue ;;
    esac
    # The program a line pipes into must be installed.
    missing=
    for prog in $(printf '%s\n' "$line" | sed -n 's/.*| *\([^ ]*\).*/\1/p'); do
        command -v "$prog" > /dev/null 2>&1 || missing=$prog
    done
    if [ -n "$missing" ]; then
        skip "no $missing"
        continue
    fi
    sh -c "$line" > "$tmp/out" 2>&1 < /dev/null
    rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $file: $line: exit $rc; $(tail -c 300 "$tmp/out")"
    fi
done < "$tmp/commands"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$passed" -gt 0 ] || exit 77
