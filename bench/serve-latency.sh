#!/bin/sh
# serve-latency.sh - the latency of POST /api/predict under 8 concurrent
# clients (curl, one keep-alive connection each), as docs/serve.md reports
# it: the median and the 99th percentile over every request, in ms.
#   bench/serve-latency.sh [MODEL.json WEIGHTS [IMAGE.png [REQUESTS]]]
# Without arguments: LeNet trained for one epoch on Fashion-MNIST, the
# README's drawing, 500 requests per client.  Run from a build directory
# (tools/nabla) or with NABLA=path/to/nabla.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
nabla=${NABLA:-./tools/nabla}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/serve-latency.XXXXXX")
trap 'kill "$pid" 2> /dev/null || true; rm -rf "$tmp"' EXIT
pid=
model=${1:-$here/models/lenet.json}
weights=${2:-}
image=${3:-$here/docs/img/drawing.png}
per=${4:-500}
if [ -z "$weights" ]; then
    "$nabla" train "$model" --epochs 1 --out "$tmp/run" > /dev/null
    weights=$tmp/run/weights.safetensors
fi
"$nabla" serve "$model" --weights "$weights" --port 0 --max-seconds 3600 > "$tmp/out" 2>&1 &
pid=$!
i=0
until grep -q '^serving on ' "$tmp/out" || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
url=$(sed -n 's/^serving on \(http:.*\)/\1/p' "$tmp/out")api/predict
client() {
    args=
    i=0
    while [ $i -lt "$per" ]; do args="$args -o /dev/null $url"; i=$((i + 1)); done
    # shellcheck disable=SC2086  # the URLs
    curl -s -w '%{http_code} %{time_total}\n' -H 'Content-Type: image/png' \
        --data-binary "@$image" $args > "$tmp/times.$1"
}
client warm
start=$(date +%s.%N)
cpids=
for n in 0 1 2 3 4 5 6 7; do client $n & cpids="$cpids $!"; done
for c in $cpids; do wait "$c"; done
end=$(date +%s.%N)
cat "$tmp"/times.[0-7] > "$tmp/all"
bad=$(grep -vc '^200 ' "$tmp/all" || true)
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
grep -q avx512f /proc/cpuinfo && echo "vectors: AVX-512" || echo "vectors: AVX2 or less"
awk '{ print $2 * 1000 }' "$tmp/all" | sort -n | awk -v t0="$start" -v t1="$end" -v bad="$bad" '
    { v[NR] = $1 }
    END {
        n = NR
        printf "%d requests from 8 clients in %.2f s (%.0f per second), %d not 200\n", n, t1 - t0,
               n / (t1 - t0), bad
        printf "latency: median %.2f ms, 99th percentile %.2f ms, max %.2f ms\n",
               v[int(n * 0.5 + 0.5)], v[int(n * 0.99 + 0.5)], v[n]
    }'
