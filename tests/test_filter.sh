#!/bin/sh
# nabla filter end to end: every kernel and mode writes a PNG of the right
# size (read from the IHDR bytes), chains, the identity keeps the pixels,
# colour images are filtered channel by channel into colour PNGs (their
# colours read back with nabla stats) or made gray first with --gray, and
# bad usage or input is one line with exit status 2.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
sample="$top_srcdir/docs/img/sample.png"
png="$top_srcdir/tests/data/png"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-filter.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

# "W H" of a PNG, from its IHDR chunk.
size() { od -An -tu4 --endian=big -j16 -N8 "$1" | awk '{print $1, $2}'; }

# expect_size WHAT "W H" nabla-filter-args...: runs and checks the size.
expect_size() {
    what=$1 want=$2
    shift 2
    rm -f "$tmp/out.png"
    if "$nabla" filter "$@" -o "$tmp/out.png" 2> "$tmp/err"; then
        got=$(size "$tmp/out.png")
        [ "$got" = "$want" ] && ok || bad "$what: size $got, expected $want"
    else
        bad "$what: exit $?: $(head -c 300 "$tmp/err")"
    fi
}

# Every kernel in every mode: same keeps 128x128, valid shrinks by k - 1,
# full grows by k - 1.
for spec in "box:3 3" "box:4 4" "gaussian:1 7" "gaussian:1.5:4 4" "sobel-x 3" "sobel-y 3" \
    "sobel 3" "gradient 3" "sharpen 3" "edge 3" "identity 3"; do
    set -- $spec
    k=$1 n=$2
    expect_size "$k same" "128 128" "$sample" --kernel "$k"
    expect_size "$k valid" "$((129 - n)) $((129 - n))" "$sample" --kernel "$k" --mode valid
    expect_size "$k full" "$((127 + n)) $((127 + n))" "$sample" --kernel "$k" --mode=full --flip
done
expect_size "normalize" "128 128" "$sample" --kernel edge --normalize
expect_size "options after" "128 128" --kernel=sobel "$sample" --normalize
expect_size "rgb read as gray" "2 2" "$png/rgb8.png" --kernel box:2

# A chain applies each kernel to the previous output: 128 -> 124 -> 122.
expect_size "chain" "122 122" "$sample" --kernel box:5 --kernel sobel --mode valid

# A JSON matrix kernel, 2 rows by 3 columns.
echo '[[1, 0, -1], [0.5, 0, -0.5]]' > "$tmp/k.json"
expect_size "json kernel" "126 127" "$sample" --kernel "$tmp/k.json" --mode valid

# The identity keeps every pixel: filtering its own output gives the same file.
"$nabla" filter "$sample" --kernel identity -o "$tmp/id1.png" &&
    "$nabla" filter "$tmp/id1.png" --kernel identity --kernel identity -o "$tmp/id2.png" &&
    cmp -s "$tmp/id1.png" "$tmp/id2.png" && ok || bad "identity changed the pixels"

# A kernel the size of the image, valid mode: one pixel (and --normalize
# of that constant image is accepted).
"$nabla" filter "$sample" --kernel box:128 --mode valid --normalize -o "$tmp/one.png" &&
    [ "$(size "$tmp/one.png")" = "1 1" ] && ok || bad "box:128 valid is not 1x1"

# ---- colour ----------------------------------------------------------------------

"$nabla" filter --help > "$tmp/help" 2>&1 && grep -q -- '--gray' "$tmp/help" && ok ||
    bad "filter --help does not describe --gray"

# The PNG's color type from its IHDR chunk: 0 gray, 2 RGB.
color_type() { od -An -tu1 -j25 -N1 "$1" | tr -d ' '; }
# expect_type WHAT TYPE nabla-filter-args...: runs and checks the color type.
expect_type() {
    what=$1 want=$2
    shift 2
    rm -f "$tmp/out.png"
    if "$nabla" filter "$@" -o "$tmp/out.png" 2> "$tmp/err"; then
        got=$(color_type "$tmp/out.png")
        [ "$got" = "$want" ] && ok || bad "$what: color type $got, expected $want"
    else
        bad "$what: exit $?: $(head -c 300 "$tmp/err")"
    fi
}
# Colour in (RGB, RGBA, palette; 8 or 16 bits): colour out; gray in (gray,
# gray and alpha, 16 bits): gray out; --gray: gray out.
for f in rgb8 rgba8 rgb16 pal8 rgb8-interlaced; do
    expect_type "$f" 2 "$png/$f.png" --kernel identity
    expect_type "$f --gray" 0 "$png/$f.png" --kernel identity --gray
done
for f in gray8 ga8 gray16; do
    expect_type "$f" 0 "$png/$f.png" --kernel box:2
    expect_type "$f --gray" 0 "$png/$f.png" --kernel box:2 --gray
done
expect_type "sobel of colour" 2 "$png/rgb8.png" --kernel sobel --normalize
expect_type "chain of colour" 2 "$png/rgb8.png" --kernel box:2 --kernel sharpen --mode full

# stats_of PNG: nabla stats of one image, its lines "channel ...".
stats_of() {
    rm -rf "$tmp/st"
    mkdir -p "$tmp/st/train/a"
    cp "$1" "$tmp/st/train/a/x.png"
    "$nabla" stats --data "$tmp/st" 2> /dev/null | grep '^channel'
}
colour="$top_srcdir/tests/data/cli/colour"
blue="$colour/train/blue/1.png"  # 4x4 of (0, 51, 204)
yellow="$colour/train/yellow/1.png"  # 4x4 of (255, 255, 0)
# Each channel filtered on its own: a box over a constant colour keeps it,
# channel by channel (gray first, the three would be their mean).
"$nabla" filter "$blue" --kernel box:3 --mode valid -o "$tmp/blue.png" 2> "$tmp/err" ||
    bad "box of blue: $(cat "$tmp/err")"
[ "$(size "$tmp/blue.png")" = "2 2" ] && ok || bad "box:3 valid of 4x4 blue is not 2x2"
[ "$(stats_of "$tmp/blue.png")" = "$(stats_of "$blue")" ] && ok ||
    bad "box of constant blue changed its colour: $(stats_of "$tmp/blue.png")"
stats_of "$tmp/blue.png" | grep -qx 'channel 2 (blue): mean 0.800000  std 0.000000' && ok ||
    bad "box of blue: $(stats_of "$tmp/blue.png")"
# --gray: the mean of the channels, (0 + 0.2 + 0.8) / 3 = 1/3, 85 of 255.
"$nabla" filter "$blue" --kernel box:3 --mode valid --gray -o "$tmp/blue-gray.png" &&
    stats_of "$tmp/blue-gray.png" | grep -qx 'channel 0: mean 0.333333  std 0.000000' && ok ||
    bad "--gray of blue: $(stats_of "$tmp/blue-gray.png")"
# --normalize maps one range over the three channels: (0, 0.2, 0.8) to
# (0, 0.25, 1), not each constant channel to 0.
"$nabla" filter "$blue" --kernel identity --normalize -o "$tmp/blue-n.png" &&
    [ "$(stats_of "$tmp/blue-n.png" | sed 's/  std.*//' | tr '\n' ' ')" = \
      "channel 0 (red): mean 0.000000 channel 1 (green): mean 0.250980 channel 2 (blue): mean 1.000000 " ] &&
    ok || bad "--normalize of blue: $(stats_of "$tmp/blue-n.png")"
# The identity keeps a colour image's pixels: a round trip is the same file,
# and the same colours as the input.
"$nabla" filter "$yellow" --kernel identity -o "$tmp/y1.png" &&
    "$nabla" filter "$tmp/y1.png" --kernel identity -o "$tmp/y2.png" &&
    cmp -s "$tmp/y1.png" "$tmp/y2.png" && ok || bad "identity changed a colour image"
[ "$(stats_of "$tmp/y1.png")" = "$(stats_of "$yellow")" ] && ok || bad "identity changed yellow's colour"
"$nabla" filter "$png/rgb8.png" --kernel identity -o "$tmp/c1.png" &&
    "$nabla" filter "$tmp/c1.png" --kernel identity -o "$tmp/c2.png" &&
    cmp -s "$tmp/c1.png" "$tmp/c2.png" && [ "$(stats_of "$tmp/c1.png")" = "$(stats_of "$png/rgb8.png")" ] &&
    ok || bad "identity changed rgb8.png"

expect_2() {
    what=$1
    shift
    "$nabla" filter "$@" > /dev/null 2> "$tmp/err"
    status=$?
    lines=$(wc -l < "$tmp/err")
    if [ "$status" -eq 2 ] && [ "$lines" -eq 1 ]; then ok; else
        bad "$what: exit $status, $lines lines: $(head -c 300 "$tmp/err")"
    fi
}
expect_2 "unknown kernel" "$sample" --kernel blur -o "$tmp/x.png"
expect_2 "box:0" "$sample" --kernel box:0 -o "$tmp/x.png"
expect_2 "gaussian:-1" "$sample" --kernel gaussian:-1 -o "$tmp/x.png"
expect_2 "gaussian size" "$sample" --kernel gaussian:1:x -o "$tmp/x.png"
expect_2 "no kernel" "$sample" -o "$tmp/x.png"
expect_2 "no output" "$sample" --kernel sobel
expect_2 "no input" --kernel sobel -o "$tmp/x.png"
expect_2 "missing input" "$tmp/none.png" --kernel sobel -o "$tmp/x.png"
expect_2 "not a png" "$png/bad/not-a-png.png" --kernel sobel -o "$tmp/x.png"
expect_2 "bad mode" "$sample" --kernel sobel --mode wrap -o "$tmp/x.png"
expect_2 "kernel larger in valid mode" "$png/gray8.png" --kernel sobel --mode valid -o "$tmp/x.png"
expect_2 "chain too small" "$sample" --kernel box:100 --kernel box:30 --mode valid -o "$tmp/x.png"
expect_2 "missing json" "$sample" --kernel "$tmp/nope.json" -o "$tmp/x.png"
echo '[[1, 2], [3]]' > "$tmp/ragged.json"
expect_2 "ragged json" "$sample" --kernel "$tmp/ragged.json" -o "$tmp/x.png"
echo '[[1, 2]' > "$tmp/broken.json"
expect_2 "broken json" "$sample" --kernel "$tmp/broken.json" -o "$tmp/x.png"
expect_2 "kernel without value" "$sample" -o "$tmp/x.png" --kernel
[ ! -e "$tmp/x.png" ] && ok || bad "a failed run wrote its output"

# The messages themselves.
"$nabla" filter "$png/gray8.png" --kernel sobel --mode valid -o "$tmp/x.png" 2> "$tmp/err"
grep -qx 'nabla filter: kernel sobel (3x3) is larger than its 2x2 input in valid mode' "$tmp/err" &&
    ok || bad "valid-mode message: $(cat "$tmp/err")"
"$nabla" filter "$sample" --kernel box:0 -o "$tmp/x.png" 2> "$tmp/err"
grep -qx 'nabla filter: kernel box:0: the size must be an integer in \[1, 1024\]' "$tmp/err" &&
    ok || bad "box:0 message: $(cat "$tmp/err")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
