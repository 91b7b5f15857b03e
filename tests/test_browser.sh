#!/bin/sh
# nabla serve's page in a real browser (Debian's chromium, driven by
# playwright-core from tests/browser/): a short LeNet run is served, the
# page is drawn on with the mouse and with a finger, and the class the page
# shows must be the one `nabla predict` gives for the PNG the page sent.
# Skipped (77) without chromium, node or playwright-core: scripts/setup.sh
# installs them.  The screenshots are kept in the build's tests/ folder.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
browser="$top_srcdir/tests/browser"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
chromium=${CHROMIUM:-/usr/bin/chromium}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
skip() { echo "SKIP: $1 (scripts/setup.sh installs it)"; exit 77; }

[ -x "$chromium" ] || skip "no $chromium"
command -v node > /dev/null 2>&1 || skip "no node"
[ -d "$browser/node_modules/playwright-core" ] || skip "no tests/browser/node_modules/playwright-core"
"$nabla" serve --help > /dev/null 2>&1 || skip "nabla was built without serve (libmicrohttpd-dev)"
if [ ! -d "$data" ]; then
    echo "test_browser: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-browser.XXXXXX")
pid=
# The server is stopped by its pid, should the test end early.
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 1 --out "$tmp/run" \
    > "$tmp/train.log" 2>&1 && ok || { bad "train exited $?: $(tail -n 1 "$tmp/train.log")"; finish; }
weights="$tmp/run/weights.safetensors"

# --max-seconds: a server this test forgets stops by itself.
"$nabla" serve "$models/lenet.json" --weights "$weights" --run "$tmp/run" --port 0 \
    --max-seconds 120 > "$tmp/serve.out" 2> "$tmp/serve.err" &
pid=$!
i=0
until grep -q '^serving on http://' "$tmp/serve.out" || [ $i -ge 300 ] || ! kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
url=$(sed -n 's|^serving on \(http://[^ ]*/\)$|\1|p' "$tmp/serve.out" | head -n 1)
[ -n "$url" ] && ok || { bad "serve did not say where it serves in 30 s: $(tail -n 1 "$tmp/serve.err")"; finish; }

# The laptop and the phone: one line on stderr says what failed.
mkdir "$tmp/out"
node "$browser/draw.mjs" "$url" "$tmp/out" > "$tmp/draw.json" 2> "$tmp/draw.err" && ok ||
    bad "the page: $(tail -n 1 "$tmp/draw.err")"

kill "$pid" 2>/dev/null
wait "$pid"
status=$?
pid=
[ "$status" -eq 0 ] && grep -q 'stopped by SIGTERM' "$tmp/serve.err" && ok ||
    bad "serve did not stop cleanly on SIGTERM: exit $status: $(tail -n 1 "$tmp/serve.err")"

# The page's class is nabla predict's for the PNG the page sent.
page=$(sed -n 's/^{"class":\([0-9]*\),.*/\1/p' "$tmp/draw.json")
if [ -s "$tmp/out/drawn.png" ] && [ -n "$page" ]; then
    "$nabla" predict "$models/lenet.json" --weights "$weights" --json "$tmp/out/drawn.png" \
        > "$tmp/predict.json" 2>&1 || bad "predict of the page's PNG failed: $(cat "$tmp/predict.json")"
    # The one ',"class":' is the top level's: the entries of "top" open with '{'.
    cli=$(sed -n 's/.*,"class":\([0-9]*\),.*/\1/p' "$tmp/predict.json")
    [ "$page" = "$cli" ] && ok || bad "the page showed class $page, nabla predict gives ${cli:-nothing}"
else
    bad "the page gave no class or no PNG: $(cat "$tmp/draw.json")"
fi

if [ -s "$tmp/out/page.png" ]; then
    mkdir -p "$top_builddir/tests"
    cp "$tmp/out/page.png" "$top_builddir/tests/browser-page.png" &&
        cp "$tmp/out/phone.png" "$top_builddir/tests/browser-phone.png" && ok ||
        bad "cannot copy the screenshots into $top_builddir/tests/"
    echo "test_browser: screenshots in $top_builddir/tests/browser-page.png and browser-phone.png"
else
    bad "no screenshot of the page"
fi

finish
