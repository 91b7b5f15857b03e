#!/bin/sh
# nabla serve over HTTP, with curl as the client, on 127.0.0.1 and a free
# port: the page and every route of the API, /api/predict agreeing with
# nabla predict on the same PNGs to the last digit, every error status
# (400, 404, 405, 413, 503), 2,000 requests from 8 concurrent clients all
# answered with the server's memory flat and the server alive, and Ctrl-C
# stopping it cleanly.  Every server stops by itself (--max-seconds) should
# the test die.
#
# $serve_wrap runs the server under a wrapper (make check-valgrind: libtool
# and valgrind, whose error exit status the test then checks).
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
nabla="$top_builddir/tools/nabla"
models="$top_srcdir/models"
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
wrap=${serve_wrap:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-serve.XXXXXX")
pids=
trap 'for p in $pids; do kill "$p" 2> /dev/null; done; rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

if ! command -v curl > /dev/null 2>&1; then
    echo "SKIP: no curl (scripts/setup.sh installs it)"
    exit 77
fi
if [ ! -d "$data" ]; then
    echo "test_serve: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

# serve NAME ARGS...: starts a server (its output in $tmp/NAME.out and
# .err), waits for its "serving on" line and sets $url and $pid.
serve() {
    name=$1
    shift
    # shellcheck disable=SC2086  # the wrapper's words
    $wrap "$nabla" serve "$@" --port 0 > "$tmp/$name.out" 2> "$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
    i=0
    until grep -q '^serving on ' "$tmp/$name.out" 2> /dev/null || [ $i -ge 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    url=$(sed -n 's/^serving on \(http:.*\)/\1/p' "$tmp/$name.out")
    [ -n "$url" ] || { bad "$name: no 'serving on' line: $(cat "$tmp/$name.err")"; return 1; }
    case $url in http://127.0.0.1:*/) ok ;; *) bad "$name: serving on $url, not 127.0.0.1" ;; esac
}

# get PATH [CURL ARGS...]: the body in $tmp/body, the status in $code.
get() {
    path=$1
    shift
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' --max-time 60 "$@" "$url${path#/}")
}

# expect CODE WHAT: the last response had status CODE (and, for an error,
# a JSON {"error": ...} body).
expect() {
    if [ "$code" = "$1" ] && { [ "$1" -lt 400 ] || grep -q '^{"error":"' "$tmp/body"; }; then
        ok
    else
        bad "$2: status $code (expected $1): $(head -c 300 "$tmp/body")"
    fi
}

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# The weights and the run of a short training.
"$nabla" train "$models/lenet.json" --data "$data" --limit 3000 --epochs 1 \
    --out "$tmp/run" > /dev/null 2>&1 || { bad "training failed"; exit 1; }
weights=$tmp/run/weights.safetensors

# The test set of /api/eval: 10 images, so that valgrind gets through it.
small=$top_srcdir/tests/data/idx/raw
serve main "$models/lenet.json" --weights "$weights" --run "$tmp/run" --data "$small" \
    --max-seconds 900 || exit 1
main=$pid

# ---- the page and the API ------------------------------------------------------

get /
expect 200 "GET /"
grep -q '<canvas' "$tmp/body" && ok || bad "GET / is not the page"
for f in app.js style.css; do
    get "/$f"
    expect 200 "GET /$f"
    cmp -s "$tmp/body" "$top_srcdir/tools/serve/$f" && ok || bad "GET /$f is not tools/serve/$f"
done
get /api/model
expect 200 "GET /api/model"
grep -q '"name":"lenet"' "$tmp/body" && grep -q '"classes":\["T-shirt/top","Trouser",' "$tmp/body" &&
    grep -q '"total_params":106154' "$tmp/body" && ok || bad "GET /api/model: $(head -c 300 "$tmp/body")"
get /api/kernels
expect 200 "GET /api/kernels"
grep -q '"layer":"conv1","shape":\[6,1,3,3\],"pixels":\[' "$tmp/body" && ok || bad "GET /api/kernels: $(head -c 200 "$tmp/body")"
get /api/run
expect 200 "GET /api/run"
grep -q '"columns":\["epoch","train_loss",' "$tmp/body" && grep -q '"rows":\[\[1,' "$tmp/body" && ok ||
    bad "GET /api/run: $(head -c 300 "$tmp/body")"
get /api/eval
expect 200 "GET /api/eval"
"$nabla" eval "$models/lenet.json" --weights "$weights" --data "$small" --json > "$tmp/eval.json" 2>&1
want=$(sed -n 's/.*"accuracy":\([0-9.e-]*\),"classes".*/\1/p' "$tmp/eval.json")
have=$(sed -n 's/.*"accuracy":\([0-9.e-]*\),"classes".*/\1/p' "$tmp/body")
[ -n "$want" ] && [ "$want" = "$have" ] && ok || bad "GET /api/eval's accuracy $have, nabla eval's $want"

# /api/predict gives what nabla predict gives, for PNGs of every kind.
images="$top_srcdir/docs/img/drawing.png $top_srcdir/docs/img/fashion-0.png
    $top_srcdir/tests/data/png/gray8.png $top_srcdir/tests/data/png/rgba16.png
    $top_srcdir/tests/data/png/pal4.png $top_srcdir/tests/data/png/gray8-interlaced.png
    $top_srcdir/tests/data/png/shapes/test/ring/x.png"
for img in $images; do
    get /api/predict --data-binary "@$img" -H 'Content-Type: image/png'
    expect 200 "predict $img"
    "$nabla" predict "$models/lenet.json" --weights "$weights" --json "$img" > "$tmp/want" 2>&1
    want=$(sed -n 's/^{"file":"[^"]*","class":\([0-9]*\),.*"probabilities":\(\[[^]]*\]\).*/\1 \2/p' "$tmp/want")
    have=$(sed -n 's/^{"class":\([0-9]*\),.*"probabilities":\(\[[^]]*\]\).*/\1 \2/p' "$tmp/body")
    [ -n "$want" ] && [ "$want" = "$have" ] && ok || bad "predict $img: $have, nabla predict: $want"
    grep -q '"input":{"channels":1,"height":28,"width":28,"pixels":\[' "$tmp/body" && ok ||
        bad "predict $img has no input"
done
get /api/activations --data-binary "@$top_srcdir/docs/img/fashion-0.png" -H 'Content-Type: image/png'
expect 200 "POST /api/activations"
grep -q '"layers":\[{"name":"conv1","type":"conv2d","shape":\[6,28,28\],"pixels":\[' "$tmp/body" && ok ||
    bad "POST /api/activations: $(head -c 300 "$tmp/body")"

# ---- errors ------------------------------------------------------------------------

printf 'not a png' > "$tmp/text"
get /api/predict --data-binary "@$tmp/text" -H 'Content-Type: image/png'
expect 400 "a body that is no PNG"
grep -q 'not a PNG' "$tmp/body" && ok || bad "the 400 does not say why: $(cat "$tmp/body")"
get /api/predict -X POST
expect 400 "an empty body"
get /api/predict --data-binary "@$top_srcdir/tests/data/png/bad/huge.png" -H 'Content-Type: image/png'
expect 400 "an image of impossible size"
get /api/predict --data-binary "@$top_srcdir/tests/data/png/bad/bad-crc.png" -H 'Content-Type: image/png'
expect 400 "a corrupt PNG"
get /no/such/page
expect 404 "an unknown path"
get /../../etc/passwd --path-as-is
expect 404 "a path out of the page"
get /api/predict
expect 405 "GET /api/predict"
get /api/model -X POST --data-binary "@$tmp/text"
expect 405 "POST /api/model"
curl -s -D "$tmp/headers" -o /dev/null "${url}api/predict"
grep -qi '^Allow: POST' "$tmp/headers" && ok || bad "a 405 without Allow: $(cat "$tmp/headers")"
head -c 5000000 /dev/zero > "$tmp/big"
get /api/predict --data-binary "@$tmp/big" -H 'Content-Type: image/png'
expect 413 "a body of 5 MB"
# Chunked, without a Content-Length: refused once past the limit.
get /api/predict --data-binary "@$tmp/big" -H 'Content-Type: image/png' -H 'Transfer-Encoding: chunked'
expect 413 "a chunked body of 5 MB"

# ---- load: 2,000 requests from 8 clients, memory flat --------------------------------

img=$top_srcdir/docs/img/drawing.png
# client N K: K predictions on one connection, each status on a line.
client() {
    args=
    i=0
    while [ $i -lt "$2" ]; do args="$args -o /dev/null ${url}api/predict"; i=$((i + 1)); done
    # shellcheck disable=SC2086  # the URLs
    curl -s -w '%{http_code}\n' --max-time 300 -H 'Content-Type: image/png' \
        --data-binary "@$img" $args > "$tmp/codes.$1"
}
if [ -n "$wrap" ]; then per=25; else per=250; fi # valgrind is ~50x slower
# clients K: 8 of them at once, K requests each.
clients() {
    cpids=
    n=0
    while [ $n -lt 8 ]; do client $n "$1" & cpids="$cpids $!"; n=$((n + 1)); done
    for c in $cpids; do wait "$c"; done
}
# Warm: the arena, and the allocator's pools of 8 connections' threads.
clients 25
before=$(rss "$main")
clients $per
after=$(rss "$main")
total=$(cat "$tmp"/codes.[0-7] | wc -l)
good=$(cat "$tmp"/codes.[0-7] | grep -c '^200$')
[ "$total" -eq $((8 * per)) ] && [ "$good" -eq "$total" ] && ok ||
    bad "$good of $total requests answered 200 ($(sort "$tmp"/codes.[0-7] | uniq -c | tr '\n' ' '))"
# Flat: some slack for the allocator's bookkeeping, not a leak (a leak of
# the body alone would be 2,000 x 2 KB).  ASan's quarantine holds freed
# memory on purpose: there its leak checker at exit stands in.
if [ -n "${sanitize:-}" ] || [ -n "$wrap" ]; then
    echo "SKIP: the memory check under the sanitizers or valgrind (they keep freed memory)"
elif [ $((after - before)) -lt 1024 ]; then
    ok
else
    bad "RSS grew from $before KB to $after KB over the load"
fi
echo "rss before $before KB, after $after KB, over $((8 * per)) requests"
get /api/model
expect 200 "the server after the load"

# ---- 503: beyond a queue of 0, a request that finds the model busy ------------------

serve busy "$models/lenet.json" --weights "$weights" --max-queue 0 --max-seconds 900 || exit 1
busy=$pid
clients 40
cat "$tmp"/codes.[0-7] > "$tmp/busy-codes"
grep -q '^503$' "$tmp/busy-codes" && ok || bad "no 503 from a server with --max-queue 0 under 8 clients"
grep -qv '^\(200\|503\)$' "$tmp/busy-codes" && bad "other statuses than 200 and 503: $(sort -u "$tmp/busy-codes" | tr '\n' ' ')" || ok

# ---- Ctrl-C stops it cleanly ------------------------------------------------------

for p in $main $busy; do
    kill -INT "$p"
    wait "$p"
    status=$?
    [ "$status" -eq 0 ] && ok || bad "the server exited $status after SIGINT: $(tail -c 600 "$tmp/main.err")"
done
pids=
grep -q '^nabla serve: stopped by Ctrl-C after [0-9]* requests$' "$tmp/main.err" && ok ||
    bad "no 'stopped by Ctrl-C' line: $(tail -c 300 "$tmp/main.err")"

# ---- --page DIR: the page's files read from DIR at the start ------------------------

mkdir "$tmp/page"
for f in index.html app.js style.css; do echo "page $f" > "$tmp/page/$f"; done
serve page "$models/lenet.json" --weights "$weights" --page "$tmp/page" --max-requests 2 \
    --max-seconds 900 || exit 1
get /
[ "$(cat "$tmp/body")" = "page index.html" ] && ok || bad "--page: GET / is not DIR/index.html"
get /app.js
[ "$(cat "$tmp/body")" = "page app.js" ] && ok || bad "--page: GET /app.js is not DIR/app.js"
# --max-requests 2: it stops by itself.
wait "$pid"
[ $? -eq 0 ] && ok || bad "the server did not stop cleanly after --max-requests 2"
pids=

# ---- refused at the start -----------------------------------------------------------

"$nabla" serve "$models/lenet.json" > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q -- '--weights' "$tmp/err" && ok || bad "serve without --weights: $(cat "$tmp/err")"
"$nabla" serve "$models/lenet.json" --weights "$weights" --host 127.0.0.1 --port 70000 > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && ok || bad "--port 70000 accepted"
"$nabla" serve "$models/lenet.json" --weights "$weights" --page "$tmp/none" > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q 'index.html' "$tmp/err" && ok || bad "--page of a missing directory: $(cat "$tmp/err")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
