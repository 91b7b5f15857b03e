#!/bin/sh
# nabla train under address-space limits (ulimit -v): every run ends by
# itself, well before its timeout, with exit 0 (trained) or exit 1 and one
# clear line saying why, on 1 thread and on 2.  OpenBLAS retries forever
# when it cannot map its 128 MiB buffer; nabla must never wait on that.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-limits.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

if [ ! -d "$data" ]; then
    echo "test_limits: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi
# AddressSanitizer reserves terabytes of address space at start: under any
# ulimit -v it cannot even begin.  Exit 77 tells automake the test skipped.
if "$top_builddir/libtool" --mode=execute ldd "$nabla" 2>/dev/null | grep -q libasan; then
    echo "test_limits: skipped: the sanitizer build cannot run under ulimit -v" \
        "(AddressSanitizer reserves terabytes of address space)"
    exit 77
fi

# libtool's wrapper may relink the tool on its first run: not under a limit.
"$nabla" --version > /dev/null || { echo "test_limits: $nabla does not run" >&2; exit 1; }

now() { date +%s.%N; }

# run LIMIT_MB THREADS: one short training run under the limit ("none":
# none), killed by timeout only if it hangs.
run() {
    limit=$1 threads=$2
    if [ "$limit" = none ]; then set_limit=":"; else set_limit="ulimit -v $((limit * 1024))"; fi
    start=$(now)
    timeout 120 sh -c "$set_limit && exec \"\$0\" \"\$@\"" "$nabla" train "$models/lenet.json" \
        --data "$data" --limit 2000 --epochs 1 --threads "$threads" --out "$tmp/run" \
        > "$tmp/out" 2> "$tmp/err"
    status=$?
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
    lines=$(grep -c . "$tmp/err")
    if [ "$limit" = none ]; then what="no limit"; else what="ulimit -v $limit MB"; fi
    what="$what, $threads thread(s): exit $status in $secs s"
    case $status in
    0)
        if grep -q '^test accuracy: ' "$tmp/out"; then
            echo "$what"; ok
        else
            bad "$what but no test accuracy: $(tail -n 2 "$tmp/out")"
        fi ;;
    1)
        if [ "$lines" -eq 1 ]; then
            echo "$what: $(grep . "$tmp/err")"; ok
        else
            bad "$what with $lines lines on stderr: $(head -c 600 "$tmp/err")"
        fi ;;
    124) bad "$what: killed by the timeout (it hung)" ;;
    *) bad "$what: $(head -c 600 "$tmp/err")" ;;
    esac
    rm -rf "$tmp/run"
}

for limit in 100 200 300 500 none; do
    for threads in 1 2; do
        run "$limit" "$threads"
    done
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
