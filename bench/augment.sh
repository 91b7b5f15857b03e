#!/bin/bash
# bench/augment.sh - what data augmentation buys and costs: the 3-conv CNN
# (models/cnn3.json) trained on Fashion-MNIST for EPOCHS epochs (10) with and
# without random crops of the image padded by 2 and horizontal flips, over
# two seeds each, printing each run's test accuracy and seconds per epoch,
# and the mean of each setting.  With MODE `timing`, what augmentation
# costs a step instead: one-epoch runs on 20,000 images, plain and augmented
# alternately, 4 of each, and the median seconds per epoch of each.
#
# usage: bench/augment.sh [BUILD_DIR [EPOCHS [THREADS [MODE]]]]
set -eu
build=${1:-build}
epochs=${2:-10}
threads=${3:-2}
mode=${4:-accuracy}
top=$(cd "$(dirname "$0")/.." && pwd)
nabla="$build/tools/nabla"
[ -x "$nabla" ] || { echo "bench/augment.sh: no $nabla: build first" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-augment.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
sed 's/"training": {"batch_size": 64, "epochs": 5}/"training": {"batch_size": 64, "epochs": 5, "random_crop": {"padding": 2}, "hflip": 0.5}/' \
    "$top/models/cnn3.json" > "$tmp/cnn3-augmented.json"
grep -q random_crop "$tmp/cnn3-augmented.json" || { echo "bench/augment.sh: cnn3.json changed" >&2; exit 1; }
grep -m1 'model name' /proc/cpuinfo
if [ "$mode" = timing ]; then
    for round in 1 2 3 4; do
        for model in "$top/models/cnn3.json" "$tmp/cnn3-augmented.json"; do
            name=plain
            case $model in *augmented*) name=augmented ;; esac
            "$nabla" train "$model" --epochs 1 --limit 20000 --threads "$threads" \
                --out "$tmp/run" > "$tmp/log" 2>&1 || { tail -n 3 "$tmp/log" >&2; exit 1; }
            secs=$(awk -F, 'NR == 2 { print $7 }' "$tmp/run/metrics.csv")
            echo "round $round $name: $secs s"
            echo "$name $secs" >> "$tmp/times"
            rm -rf "$tmp/run"
        done
    done
    for name in plain augmented; do
        awk -v k="$name" '$1 == k { print $2 }' "$tmp/times" | sort -n |
            awk -v k="$name" '{ v[NR] = $1 } END { printf "median %-10s %.3f s per epoch of 20000 images (%.3f ms a step of 64)\n", k, (v[2] + v[3]) / 2, (v[2] + v[3]) / 2 / (20000 / 64) * 1000 }'
    done
    exit 0
fi
printf '%-10s %4s %9s %9s\n' setting seed accuracy s/epoch
for model in "$top/models/cnn3.json" "$tmp/cnn3-augmented.json"; do
    name=plain
    case $model in *augmented*) name=augmented ;; esac
    for seed in 1 2; do
        "$nabla" train "$model" --epochs "$epochs" --seed "$seed" --threads "$threads" \
            --out "$tmp/run" > "$tmp/log" 2>&1 || { tail -n 3 "$tmp/log" >&2; exit 1; }
        acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$tmp/log")
        secs=$(sed -n 's/^epoch [0-9]*\/[0-9]*: .* - \([0-9.]*\) s$/\1/p' "$tmp/log" |
               awk '{ s += $1; n++ } END { printf "%.2f", s / n }')
        printf '%-10s %4d %9s %9s\n' "$name" "$seed" "$acc" "$secs"
        echo "$name $acc $secs" >> "$tmp/all"
        rm -rf "$tmp/run"
    done
done
awk '{ a[$1] += $2; s[$1] += $3; n[$1]++ }
     END { for (k in a) printf "mean %-10s accuracy %.4f, %.2f s/epoch\n", k, a[k] / n[k], s[k] / n[k] }' "$tmp/all" | sort
