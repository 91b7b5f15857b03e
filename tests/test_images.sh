#!/bin/sh
# nabla visualize and nabla ascend end to end: the pictures visualize
# writes and their sizes (read from the IHDR bytes), and for colour models
# colour kernels and input (their colours read back with nabla stats); the
# course's Sobel-x ascent, whose objective rises at every step; a class
# image of a LeNet trained briefly on Fashion-MNIST that scores above every
# test image of its class; and one line with exit status 2 for each bad
# usage or input.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
sample="$top_srcdir/docs/img/sample.png"
png="$top_srcdir/tests/data/png"
sobel="$top_srcdir/tests/data/ascend/sobel-x"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

if [ ! -d "$data" ]; then
    echo "test_images: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

# "W H C" of a PNG, from its IHDR chunk: width, height and color type
# (0 gray, 2 RGB).
info() {
    echo "$(od -An -tu4 --endian=big -j16 -N8 "$1" | awk '{print $1, $2}')" \
        "$(od -An -tu1 -j25 -N1 "$1" | tr -d ' ')"
}
expect_png() {
    if [ ! -f "$1" ]; then
        bad "$1 was not written"
        return
    fi
    got=$(info "$1")
    [ "$got" = "$2" ] && ok || bad "$1: width, height and color type $got, expected $2"
}

# ---- help -----------------------------------------------------------------------

"$nabla" --help > "$tmp/help" 2>&1
for verb in visualize ascend; do
    grep -q "^  $verb " "$tmp/help" && ok || bad "nabla --help does not list $verb"
done
# help_names VERB FLAG...: the verb's help describes each flag.
help_names() {
    verb=$1
    shift
    "$nabla" help "$verb" > "$tmp/help" 2>&1 || bad "nabla help $verb exited $?"
    for flag in "$@"; do
        grep -q -- "--$flag" "$tmp/help" && ok || bad "$verb --help does not describe --$flag"
    done
}
help_names visualize input out weights seed invert no-invert
help_names ascend class layer channel objective weights steps lr seed every no-clamp zoom data out

# ---- visualize ----------------------------------------------------------------

# LeNet trained for a moment (weights for visualize and ascend).
"$nabla" train "$models/lenet.json" --data "$data" --limit 6000 --epochs 1 \
    --out "$tmp/lenet" > "$tmp/train.log" 2>&1 || bad "train exited $?: $(tail -n 1 "$tmp/train.log")"
weights="$tmp/lenet/weights.safetensors"

# Kernels 3x3 shown 8 times larger (24 pixels) with 1-pixel lines: conv1's
# 6 kernels in 3 x 2, conv2's 16 rows of 6; activations of 28x28 at zoom 2,
# 14x14 at 4 and 7x7 at 7 in near-square grids; the 128x128 sample filtered
# by conv1's 6 kernels at zoom 1.
"$nabla" visualize "$models/lenet.json" --weights "$weights" --input "$sample" \
    --out "$tmp/vis" > "$tmp/vis.log" 2> "$tmp/err" || bad "visualize exited $?: $(cat "$tmp/err")"
expect_png "$tmp/vis/filters-conv1.png" "76 51 2"
expect_png "$tmp/vis/filters-conv2.png" "151 401 2"
expect_png "$tmp/vis/activations-conv1.png" "172 115 2"
expect_png "$tmp/vis/activations-1.png" "172 115 2"
expect_png "$tmp/vis/activations-2.png" "172 115 2"
expect_png "$tmp/vis/activations-conv2.png" "229 229 2"
expect_png "$tmp/vis/activations-4.png" "229 229 2"
expect_png "$tmp/vis/activations-5.png" "201 201 2"
expect_png "$tmp/vis/responses.png" "388 259 2"
[ "$(ls "$tmp/vis" | wc -l)" -eq 9 ] && ok || bad "visualize wrote $(ls "$tmp/vis" | tr '\n' ' ')"
[ "$(wc -l < "$tmp/vis.log")" -eq 9 ] && grep -q '^filters-conv2.png  *151 x 401  *conv2.weight \[16, 6, 3, 3\]$' \
    "$tmp/vis.log" && ok || bad "visualize's listing: $(head -c 300 "$tmp/vis.log")"

# Unnamed layers, activations fused into the convolutions, and 32 input
# channels of which the first 16 are drawn: 64 rows of 16 kernels.  No
# weights: the seeded default initialisation.  A 2x2 RGB image is read as
# gray and its responses magnified 24 times.
"$nabla" visualize "$models/keras-cnn.json" --seed 3 --input "$png/rgb8.png" \
    --out "$tmp/keras/sub" > /dev/null 2> "$tmp/err" || bad "visualize keras-cnn: $(cat "$tmp/err")"
expect_png "$tmp/keras/sub/filters-0.png" "201 101 2"
expect_png "$tmp/keras/sub/filters-2.png" "401 1601 2"
expect_png "$tmp/keras/sub/filters-4.png" "401 1601 2"
expect_png "$tmp/keras/sub/activations-0.png" "425 213 2"
expect_png "$tmp/keras/sub/responses.png" "393 197 2"
[ "$(ls "$tmp/keras/sub" | wc -l)" -eq 9 ] && ok || bad "keras-cnn: $(ls "$tmp/keras/sub" | tr '\n' ' ')"

# The same weights give the same pictures.
"$nabla" visualize "$models/lenet.json" --weights "$weights" --input "$sample" \
    --out "$tmp/vis2" > /dev/null 2>&1 &&
    cmp -s "$tmp/vis/filters-conv2.png" "$tmp/vis2/filters-conv2.png" &&
    cmp -s "$tmp/vis/activations-5.png" "$tmp/vis2/activations-5.png" && ok ||
    bad "two runs of visualize differ"

# ---- visualize: colour models ------------------------------------------------------

# means PNG: the mean of each channel of a PNG, "R G B" to 6 decimals, read
# back by nabla stats from a one-image data set.
means() {
    rm -rf "$tmp/st"
    mkdir -p "$tmp/st/train/a"
    cp "$1" "$tmp/st/train/a/x.png"
    "$nabla" stats --data "$tmp/st" 2> /dev/null |
        sed -n 's/^channel [0-9] ([a-z]*): mean \([0-9.]*\) .*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
# picture_means TILE_PX BORDER_PX R G B: the means of a picture of TILE_PX
# pixels of 8-bit colour (R, G, B) and BORDER_PX of the grid's blue
# (51, 102, 230), as means prints them.
picture_means() {
    awk -v t="$1" -v b="$2" -v r="$3" -v g="$4" -v bl="$5" 'BEGIN {
        n = (t + b) * 255
        printf "%.6f %.6f %.6f", (t * r + b * 51) / n, (t * g + b * 102) / n, (t * bl + b * 230) / n }'
}
cli="$top_srcdir/tests/data/cli"
yellow="$cli/colour/test/yellow/1.png"  # 4x4 of (255, 255, 0)
# rgb1x1: input [3, 2, 2] and one 1x1 kernel of weights 1, 0, 0.5 for R, G
# and B: one colour tile (1, 0, 0.5) on its range 0..1, 8-bit (255, 0, 128),
# magnified 24 times: 576 pixels in 26x26, 100 of them border.  input.png:
# the yellow image at the model's 2x2, as it is (not made gray, not
# inverted although light on its border), magnified to 48x48 in 50x50.
"$nabla" visualize "$cli/rgb1x1.json" --weights "$cli/rgb1x1.safetensors" --input "$yellow" \
    --out "$tmp/rgb1" > "$tmp/rgb1.log" 2> "$tmp/err" || bad "visualize rgb1x1: $(cat "$tmp/err")"
expect_png "$tmp/rgb1/filters-c.png" "26 26 2"
expect_png "$tmp/rgb1/activations-c.png" "50 50 2"
expect_png "$tmp/rgb1/input.png" "50 50 2"
expect_png "$tmp/rgb1/responses.png" "50 50 2"
[ "$(ls "$tmp/rgb1" | wc -l)" -eq 4 ] && ok || bad "visualize rgb1x1 wrote $(ls "$tmp/rgb1" | tr '\n' ' ')"
grep -q '^input.png  *50 x 50  *.*yellow/1.png as the model.s input \[3, 2, 2\]$' "$tmp/rgb1.log" && ok ||
    bad "visualize rgb1x1's listing: $(cat "$tmp/rgb1.log")"
want=$(picture_means 576 100 255 0 128)
got=$(means "$tmp/rgb1/filters-c.png")
[ "$got" = "$want" ] && ok || bad "rgb1x1's colour kernel: channel means $got, expected $want"
want=$(picture_means 2304 196 255 255 0)
got=$(means "$tmp/rgb1/input.png")
[ "$got" = "$want" ] && ok || bad "rgb1x1's input.png of yellow: channel means $got, expected $want"
# --invert: yellow, light on its border, becomes (0, 0, 1).
"$nabla" visualize "$cli/rgb1x1.json" --weights "$cli/rgb1x1.safetensors" --input "$yellow" \
    --invert --out "$tmp/rgb1i" > /dev/null 2> "$tmp/err" || bad "visualize --invert: $(cat "$tmp/err")"
want=$(picture_means 2304 196 0 0 255)
got=$(means "$tmp/rgb1i/input.png")
[ "$got" = "$want" ] && ok || bad "input.png of yellow --invert: channel means $got, expected $want"
# A gray PNG (pixels 204, 255, 255, 255) in a colour model: the gray
# repeated in R, G and B, each pixel 576 times.
"$nabla" visualize "$cli/rgb1x1.json" --weights "$cli/rgb1x1.safetensors" \
    --input "$cli/stats-gray/train/b/1.png" --out "$tmp/rgb1g" > /dev/null 2> "$tmp/err" ||
    bad "visualize a gray PNG: $(cat "$tmp/err")"
want=$(awk 'BEGIN { s = 204 + 3 * 255; n = 2500 * 255
    printf "%.6f %.6f %.6f", (576 * s + 196 * 51) / n, (576 * s + 196 * 102) / n, (576 * s + 196 * 230) / n }')
got=$(means "$tmp/rgb1g/input.png")
[ "$got" = "$want" ] && ok || bad "input.png of a gray PNG: channel means $got, expected $want"
# A gray model's kernels are gray tiles: its picture's green and red means
# differ by the border's alone (LeNet's conv1, 3 x 2 tiles of 24x24 in
# 76x51: 3456 tile pixels, 420 of border of green - red = 51 of 255).
got=$(means "$tmp/vis/filters-conv1.png")
awk -v m="$got" 'BEGIN { split(m, c, " "); d = 420 * 51 / 255 / (76 * 51)
    exit !(c[2] - c[1] > d - 2e-6 && c[2] - c[1] < d + 2e-6) }' && ok ||
    bad "LeNet's conv1 kernels are not gray tiles: channel means $got"

# A colour model of 4 kernels 3x3 over RGB: a colour tile per kernel, 2 x 2
# of 24x24 (a gray layout would be 4 rows of 3 tiles, 76 x 101); its second
# convolution, on 4 channels, keeps gray tiles: 2 rows of 4.  The input in
# colour at the model's 8x8, magnified 6 times; the 2x2 image's responses
# to c's kernels magnified 24 times, 2 x 2 tiles of 48x48.
cat > "$tmp/rgb8.json" <<'EOF'
{"name": "rgb8", "input": [3, 8, 8], "layers": [
  {"name": "c", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "activation": "relu"},
  {"name": "c2", "type": "conv2d", "out_channels": 2, "kernel_size": 3},
  {"type": "flatten"}, {"name": "fc", "type": "linear", "out_features": 2}]}
EOF
"$nabla" visualize "$tmp/rgb8.json" --seed 1 --input "$png/rgb8.png" --out "$tmp/rgb8" \
    > "$tmp/rgb8.log" 2> "$tmp/err" || bad "visualize rgb8: $(cat "$tmp/err")"
expect_png "$tmp/rgb8/filters-c.png" "51 51 2"
expect_png "$tmp/rgb8/filters-c2.png" "101 51 2"
expect_png "$tmp/rgb8/input.png" "50 50 2"
expect_png "$tmp/rgb8/responses.png" "99 99 2"
grep -q '^filters-c.png  *51 x 51  *c.weight \[4, 3, 3, 3\]$' "$tmp/rgb8.log" && ok ||
    bad "visualize rgb8's listing: $(cat "$tmp/rgb8.log")"

# ---- ascend: the course's Sobel-x exercise ----------------------------------------

# rising FILE: every objective printed is strictly above the one before.
rising() {
    awk '$1 == "step" { if (n++ && !($4 > last)) { print "step " $2 ": " $4 " after " last; bad = 1 }
                        last = $4 }
         END { if (n < 2) { print "fewer than 2 steps"; bad = 1 } exit bad }' "$1"
}

# The 9x9 image maximising sum(conv(x, sobel_x, 'same')^2): for a small
# step the objective rises at every step, inside [0, 1] and outside it.
ascend_sobel() {
    "$nabla" ascend "$sobel.json" --weights "$sobel.safetensors" --layer sobel --channel 0 \
        --objective sumsq "$@"
}
ascend_sobel --lr 0.001 --steps 20 --every 1 -o "$tmp/sobel.png" > "$tmp/sobel.log" 2> "$tmp/err" ||
    bad "sobel ascent exited $?: $(cat "$tmp/err")"
[ "$(grep -c '^step ' "$tmp/sobel.log")" -eq 21 ] && ok || bad "sobel ascent did not print 21 steps"
why=$(rising "$tmp/sobel.log") && ok || bad "sobel objective does not rise: $why"
ascend_sobel --lr 0.01 --steps 20 --every 1 --no-clamp -o "$tmp/sobel-free.png" > "$tmp/free.log" 2>&1
why=$(rising "$tmp/free.log") && ok || bad "unclamped sobel objective does not rise: $why"
# Step 0 is the seeded noise; a 9x9 image magnified 25 times to 225 pixels.
grep -qx 'step 0  objective 131.988708' "$tmp/sobel.log" && ok ||
    bad "step 0: $(head -n 1 "$tmp/sobel.log")"
expect_png "$tmp/sobel.png" "225 225 0"
# A longer climb ends on a corner of [0, 1]^81, an image of 0s and 1s:
# stripes two pixels wide, with an integer objective.
ascend_sobel --lr 0.01 --steps 100 --every 100 --zoom 1 -o "$tmp/sobel9.png" > "$tmp/sobel9.log" 2>&1
grep -qx 'step 100  objective 926' "$tmp/sobel9.log" && ok ||
    bad "long sobel ascent: $(tail -n 1 "$tmp/sobel9.log")"
expect_png "$tmp/sobel9.png" "9 9 0"

# ---- ascend: a class of Fashion-MNIST --------------------------------------------

# The trouser (1) and ankle boot (9) images score higher than every test
# image of their class.
for class in 1 9; do
    "$nabla" ascend "$models/lenet.json" --weights "$weights" --class "$class" --data "$data" \
        -o "$tmp/class$class.png" > "$tmp/class.log" 2> "$tmp/err" ||
        bad "ascend --class $class exited $?: $(cat "$tmp/err")"
    best=$(sed -n 's/^test images of class '"$class"': 1000, highest score \([^ ]*\) (image [0-9]*)$/\1/p' "$tmp/class.log")
    final=$(sed -n 's/^step 100  objective //p' "$tmp/class.log")
    if [ -n "$best" ] && [ -n "$final" ] && awk "BEGIN { exit !($final > $best) }"; then ok; else
        bad "class $class: ascended score '$final', best test image '$best'"
    fi
    expect_png "$tmp/class$class.png" "224 224 0"
done

# visualize of that 224x224 image: responses.png shrinks it to 128x128.
"$nabla" visualize "$models/lenet.json" --weights "$weights" --input "$tmp/class9.png" \
    --out "$tmp/big" > /dev/null 2> "$tmp/err" || bad "visualize of a large image: $(cat "$tmp/err")"
expect_png "$tmp/big/responses.png" "388 259 2"
expect_png "$tmp/big/activations-conv1.png" "172 115 2"

# An RGB model: the image has 3 channels and is written in color; a
# channel of a hidden layer, by its mean (convex in the image, as the
# relu of a convolution: each step within [0, 1] raises it).
cat > "$tmp/rgb.json" <<'EOF'
{"input": [3, 8, 8], "layers": [
  {"name": "c", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "activation": "relu"},
  {"type": "flatten"}, {"name": "fc", "type": "linear", "out_features": 2}]}
EOF
"$nabla" ascend "$tmp/rgb.json" --layer c --channel 3 --steps 10 --lr 0.1 --every 1 -o "$tmp/rgb.png" > "$tmp/rgb.log" 2> "$tmp/err" ||
    bad "rgb ascend exited $?: $(cat "$tmp/err")"
expect_png "$tmp/rgb.png" "224 224 2"
why=$(rising "$tmp/rgb.log") && ok || bad "rgb channel objective does not rise: $why"

# A class score is the logit, before a final softmax layer: it climbs past
# the 1 that a probability cannot reach.
cat > "$tmp/soft.json" <<'EOF'
{"input": [1, 4, 4], "layers": [{"type": "flatten"}, {"type": "linear", "out_features": 3},
  {"type": "softmax"}]}
EOF
"$nabla" ascend "$tmp/soft.json" --class 2 --lr 10 --steps 20 --every 20 -o "$tmp/soft.png" \
    > "$tmp/soft.log" 2> "$tmp/err" || bad "softmax ascend exited $?: $(cat "$tmp/err")"
final=$(sed -n 's/^step 20  objective //p' "$tmp/soft.log")
[ -n "$final" ] && awk "BEGIN { exit !($final > 1) }" && ok || bad "softmax model's class score: '$final'"

# ---- bad usage and input: one line, exit status 2 ---------------------------------

expect_2() {
    what=$1
    shift
    "$nabla" "$@" > /dev/null 2> "$tmp/err"
    status=$?
    lines=$(wc -l < "$tmp/err")
    if [ "$status" -eq 2 ] && [ "$lines" -eq 1 ]; then ok; else
        bad "$what: exit $status, $lines lines: $(head -c 300 "$tmp/err")"
    fi
}
# expect_msg WHAT MESSAGE nabla-args...: exit 2 with exactly this line.
expect_msg() {
    what=$1 msg=$2
    shift 2
    "$nabla" "$@" > /dev/null 2> "$tmp/err"
    status=$?
    if [ "$status" -eq 2 ] && [ "$(cat "$tmp/err")" = "$msg" ]; then ok; else
        bad "$what: exit $status: $(head -c 300 "$tmp/err")"
    fi
}
lenet="$models/lenet.json"
o="$tmp/x.png"
expect_2 "visualize without --input" visualize "$lenet" --out "$tmp/x"
expect_2 "visualize without --out" visualize "$lenet" --input "$sample"
expect_2 "visualize without a model" visualize --input "$sample" --out "$tmp/x"
expect_2 "visualize, missing image" visualize "$lenet" --input "$tmp/none.png" --out "$tmp/x"
expect_2 "visualize, not a png" visualize "$lenet" --input "$png/bad/not-a-png.png" --out "$tmp/x"
expect_2 "visualize, wrong weights" visualize "$models/keras-cnn.json" --weights "$weights" --input "$sample" --out "$tmp/x"
expect_2 "visualize, bad seed" visualize "$lenet" --seed -1 --input "$sample" --out "$tmp/x"
expect_msg "visualize, no convolution" 'nabla visualize: the model "mlp" has no conv2d layer' \
    visualize "$models/mlp.json" --input "$sample" --out "$tmp/x"
cat > "$tmp/two.json" <<'EOF'
{"name": "two", "input": [2, 8, 8], "layers": [
  {"name": "c", "type": "conv2d", "out_channels": 2, "kernel_size": 3},
  {"type": "flatten"}, {"name": "fc", "type": "linear", "out_features": 2}]}
EOF
expect_msg "visualize, two-channel model" 'nabla visualize: the model "two" does not take one image [1, H, W] (gray) or [3, H, W] (colour)' \
    visualize "$tmp/two.json" --input "$sample" --out "$tmp/x"
expect_msg "visualize, --invert --no-invert" 'nabla visualize: --invert and --no-invert exclude each other: give one' \
    visualize "$tmp/rgb.json" --invert --no-invert --input "$sample" --out "$tmp/x"
[ ! -e "$tmp/x" ] && ok || bad "a failed visualize made its directory"

expect_msg "ascend, no objective" 'nabla ascend: give --class K or --layer NAME --channel C (see nabla ascend --help)' \
    ascend "$lenet" -o "$o"
expect_msg "ascend, both" 'nabla ascend: --class and --layer/--channel exclude each other: give one' \
    ascend "$lenet" --class 1 --layer conv1 --channel 0 -o "$o"
expect_msg "ascend, layer alone" 'nabla ascend: --layer needs --channel C' \
    ascend "$lenet" --layer conv1 -o "$o"
expect_msg "ascend, channel alone" 'nabla ascend: --channel needs --layer NAME' \
    ascend "$lenet" --channel 1 -o "$o"
expect_msg "ascend, class out of range" 'nabla ascend: --class: 10 is not a class of the model "lenet" (0 to 9)' \
    ascend "$lenet" --class 10 -o "$o"
expect_msg "ascend, negative class" "nabla ascend: --class: '-1' is not an integer >= 0" \
    ascend "$lenet" --class -1 -o "$o"
expect_msg "ascend, no such layer" 'nabla ascend: --layer: the model "lenet" has no layer "conv3" (layers with an image output: conv1, 1, 2, conv2, 4, 5)' \
    ascend "$lenet" --layer conv3 --channel 0 -o "$o"
expect_msg "ascend, flat layer" 'nabla ascend: --layer: layer "fc1" (linear) gives [120], not an image [C, H, W] (layers with one: conv1, 1, 2, conv2, 4, 5)' \
    ascend "$lenet" --layer fc1 --channel 0 -o "$o"
expect_msg "ascend, channel out of range" 'nabla ascend: --channel: 6 is not a channel of layer "conv1" (0 to 5)' \
    ascend "$lenet" --layer conv1 --channel 6 -o "$o"
expect_msg "ascend, bad objective" "nabla ascend: --objective: 'max' is not mean or sumsq" \
    ascend "$lenet" --layer conv1 --channel 0 --objective max -o "$o"
expect_msg "ascend, objective of a class" 'nabla ascend: --objective applies to --layer only' \
    ascend "$lenet" --class 1 --objective sumsq -o "$o"
expect_msg "ascend, no output" 'nabla ascend: -o OUT.png is required (see nabla ascend --help)' \
    ascend "$lenet" --class 1
expect_2 "ascend, lr 0" ascend "$lenet" --class 1 --lr 0 -o "$o"
expect_2 "ascend, negative steps" ascend "$lenet" --class 1 --steps -1 -o "$o"
expect_2 "ascend, zoom 0" ascend "$lenet" --class 1 --zoom 0 -o "$o"
expect_2 "ascend, data of a layer" ascend "$lenet" --layer conv1 --channel 0 --data "$data" -o "$o"
expect_2 "ascend, missing data" ascend "$lenet" --class 1 --data "$tmp/none" -o "$o"
expect_2 "ascend, missing model" ascend "$tmp/none.json" --class 1 -o "$o"
expect_2 "ascend, missing weights" ascend "$lenet" --weights "$tmp/none" --class 1 -o "$o"
expect_2 "ascend, no image layer" ascend "$models/mlp.json" --layer 1 --channel 0 -o "$o"
[ ! -e "$o" ] && ok || bad "a failed ascend wrote its output"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
