#!/bin/sh
# The library's rooms call only downward, and none grows too large:
#  1. no object of lib/ references a symbol of an object in a higher layer
#     (nm on the built objects; the layers are ranked below);
#  2. no cycle among the objects at all (tsort);
#  3. no function over 100 lines and no .c file over 1,100 lines in lib/
#     and tools/.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-layers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

# The rank of an object: what it may call is at its rank or below.
rank() {
    case $1 in
    cpu|text) echo 0 ;;
    blas|gemm|context|memory) echo 1 ;;
    tensor|rng|batch) echo 2 ;;
    graph) echo 3 ;;
    ops/registry) echo 5 ;;
    ops/*) echo 4 ;;
    gradcheck|io/*) echo 5 ;;
    nn/*) echo 6 ;;
    train/*|dist/*) echo 7 ;;
    *) echo unknown ;;
    esac
}

objs=$(find "$top_builddir/lib" -name 'libnabla_core_la-*.o' ! -path '*/.libs/*' | sort)
[ -n "$objs" ] || { echo "test_layers: no objects under $top_builddir/lib (build first)" >&2; exit 1; }
for o in $objs; do
    dir=$(dirname "$o"); dir=${dir#"$top_builddir/lib"}; dir=${dir#/}
    name=$(basename "$o" .o); name=${name#libnabla_core_la-}
    key=${dir:+$dir/}$name
    [ "$(rank "$key")" != unknown ] || bad "lib/$key.c has no layer: give it a rank in tests/test_layers.sh"
    nm --defined-only -g "$o" | awk -v k="$key" 'NF == 3 {print $3, k}' >> "$tmp/defs"
    nm -u "$o" | awk -v k="$key" '{print k, $2}' >> "$tmp/uses"
done
awk 'NR == FNR {def[$1] = $2; next} ($2 in def) && def[$2] != $1 {print $1, def[$2], $2}' \
    "$tmp/defs" "$tmp/uses" | sort -u > "$tmp/edges"
while read -r from to sym; do
    rf=$(rank "$from"); rt=$(rank "$to")
    [ "$rt" = unknown ] || [ "$rf" = unknown ] || [ "$rt" -le "$rf" ] ||
        bad "lib/$from.c (layer $rf) calls up into lib/$to.c (layer $rt): $sym"
done < "$tmp/edges"
awk '{print $1, $2}' "$tmp/edges" | sort -u | tsort > /dev/null 2> "$tmp/loops" ||
    bad "the objects reference each other in a circle: $(tr '\n' ' ' < "$tmp/loops")"
echo "test_layers: $(wc -l < "$tmp/edges") references among $(echo "$objs" | wc -l) objects"

# Functions open with "{" alone at the start of a line and close with "}".
for f in "$top_srcdir"/lib/*.c "$top_srcdir"/lib/*/*.c "$top_srcdir"/tools/*.c; do
    lines=$(wc -l < "$f")
    [ "$lines" -le 1100 ] || bad "${f#"$top_srcdir"/} has $lines lines (at most 1,100)"
    awk -v file="${f#"$top_srcdir"/}" '
        /^\{/ { start = FNR; name = prev }
        /^\}/ && start { if (FNR - start + 2 > 100) printf "%s:%d: %s has %d lines\n", file, start, name, FNR - start + 2; start = 0 }
        { prev = $0 }' "$f" > "$tmp/long"
    [ ! -s "$tmp/long" ] || bad "functions over 100 lines: $(cat "$tmp/long")"
done

[ "$fail" -eq 0 ] || exit 1
echo "test_layers: every call goes downward, no cycle, no function over 100 lines"
