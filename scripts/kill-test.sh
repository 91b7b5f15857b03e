#!/usr/bin/env bash
# Kills `nabla train` with SIGKILL at random moments and checks that its run
# directory always resumes: after each kill, `--resume` ends with the
# weights of a run never killed (the same sha256), with its metrics.csv
# and curves.png, and with no temporary of the run's files left.
#   scripts/kill-test.sh [kills]   (default 50; a few minutes on 2 cores)
# A moment is a random time into the run, or, when strace is there, a
# random call among the run's rename, fsync, openat and write (strace -e
# inject=CALL:signal=SIGKILL:when=N), so that kills land inside epochs and
# inside the writes that end them.  A round kills a fresh run,
# sometimes its resume too, then resumes it to its end and compares.
# NABLA (default build/tools/nabla) and NABLA_DATA (Debian's Fashion-MNIST)
# pick the binary and the data; the small run is keras-cnn's (validation,
# dropout, RMSprop) on 1,200 images for 3 epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

kills=${1:-50}
[[ "$kills" =~ ^[0-9]+$ ]] || { echo "usage: scripts/kill-test.sh [kills]" >&2; exit 2; }
nabla=${NABLA:-build/tools/nabla}
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
[ -x "$nabla" ] || { echo "kill-test: no $nabla (run scripts/setup.sh)" >&2; exit 2; }
# The program itself, not libtool's wrapper script: a kill at one of the
# wrapper's own calls would fail it with libtool's message, not nabla's.
if head -n 1 "$nabla" | grep -q '^#!' && [ -x "$(dirname "$nabla")/.libs/$(basename "$nabla")" ]; then
    libs=$(cd "$(dirname "$nabla")/../lib/.libs" && pwd)
    export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    nabla=$(dirname "$nabla")/.libs/$(basename "$nabla")
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-kill.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
args=(train models/keras-cnn.json --data "$data" --limit 1200 --epochs 3 --threads 2)
calls=(rename fsync openat write)
have_strace=false
command -v strace > /dev/null 2>&1 && have_strace=true
# traced CMD...: CMD under strace; LeakSanitizer cannot run under ptrace,
# so a sanitized build checks leaks in the runs that are not traced only.
traced() {
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f "$@"
}

failures=0
fail() { echo "kill-test: FAIL: $*" >&2; failures=$((failures + 1)); }

# The run never killed: its weights, metrics (without the seconds) and
# curves, how long it takes, and how many of each call it makes.
start=$(date +%s%N)
"$nabla" "${args[@]}" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 ||
    { echo "kill-test: the uninterrupted run failed: $(tail -n 1 "$tmp/ref.log")" >&2; exit 1; }
ms=$((($(date +%s%N) - start) / 1000000))
want_weights=$(sha256sum < "$tmp/ref/weights.safetensors")
want_curves=$(sha256sum < "$tmp/ref/curves.png")
cut -d, -f1-6 "$tmp/ref/metrics.csv" > "$tmp/ref-metrics"
declare -A count
if $have_strace; then
    rm -rf "$tmp/ref"
    traced -c -o "$tmp/calls" -e trace="$(IFS=,; echo "${calls[*]}")" \
        "$nabla" "${args[@]}" --out "$tmp/ref" > /dev/null 2>&1 ||
        { echo "kill-test: the traced run failed" >&2; exit 1; }
    for c in "${calls[@]}"; do
        count[$c]=$(awk -v c="$c" '$NF == c {print $4}' "$tmp/calls")
        [ -n "${count[$c]}" ] || count[$c]=1
    done
fi
echo "kill-test: the run takes ${ms} ms; $kills kills to go"

declare -A how
# kill_once DIR [--resume]: one run on DIR killed at a random moment; sets
# `killed` (true when SIGKILL ended it) and `moment`.
kill_once() {
    local dir=$1 status
    shift
    if $have_strace && ((RANDOM % 2)); then
        local c=${calls[RANDOM % ${#calls[@]}]}
        local n=$((1 + RANDOM % ${count[$c]}))
        moment="$c #$n"
        # In a subshell of its own, whose stderr takes bash's "Killed".
        (traced -o /dev/null -e inject="$c":signal=SIGKILL:when="$n" \
            "$nabla" "${args[@]}" --out "$dir" "$@" > "$tmp/run.log" 2>&1; exit $?) 2>/dev/null &&
            status=0 || status=$?
        how[$c]=$((${how[$c]:-0} + 1))
    else
        local t=$((RANDOM * 32768 + RANDOM))
        t=$((t % (ms + 1)))
        moment="after $t ms"
        "$nabla" "${args[@]}" --out "$dir" "$@" > "$tmp/run.log" 2>&1 &
        local pid=$!
        sleep "$(printf '%d.%03d' $((t / 1000)) $((t % 1000)))"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null && status=0 || status=$?
        how[timer]=$((${how[timer]:-0} + 1))
    fi
    killed=false
    case $status in
        137) killed=true ;;
        0) ;; # done before the moment came
        *) fail "$moment: exit $status: $(tail -n 1 "$tmp/run.log")" ;;
    esac
}

done_kills=0
rounds=0
while ((done_kills < kills)); do
    rounds=$((rounds + 1))
    before=$failures
    dir=$tmp/run
    rm -rf "$dir"
    line="round $rounds:"
    resume=()
    per_round=$((1 + RANDOM % 2))
    for ((j = 0; j < per_round && done_kills < kills; j++)); do
        kill_once "$dir" "${resume[@]}"
        if $killed; then
            done_kills=$((done_kills + 1))
            line="$line killed $moment;"
        else
            line="$line ($moment: finished first);"
        fi
        resume=(--resume)
    done
    "$nabla" "${args[@]}" --out "$dir" --resume > "$tmp/resume.log" 2>&1 ||
        fail "round $rounds: the resume failed: $(tail -n 1 "$tmp/resume.log")"
    [ "$(sha256sum < "$dir/weights.safetensors" 2>/dev/null)" = "$want_weights" ] ||
        fail "round $rounds: the resumed weights differ from the uninterrupted run's"
    cut -d, -f1-6 "$dir/metrics.csv" 2>/dev/null | cmp -s - "$tmp/ref-metrics" ||
        fail "round $rounds: metrics.csv differs from the uninterrupted run's"
    [ "$(sha256sum < "$dir/curves.png" 2>/dev/null)" = "$want_curves" ] ||
        fail "round $rounds: curves.png differs from the uninterrupted run's"
    if ls "$dir" | grep -q '\.tmp\.'; then
        fail "round $rounds: temporaries left: $(ls "$dir" | grep '\.tmp\.' | tr '\n' ' ')"
    fi
    if [ "$failures" -eq "$before" ]; then
        echo "kill-test: $line resumed to the same weights, metrics and curves"
    else
        echo "kill-test: $line FAILED"
    fi
done

summary=""
for k in timer "${calls[@]}"; do
    [ -z "${how[$k]:-}" ] || summary="$summary $k ${how[$k]},"
done
echo "kill-test: $done_kills kills in $rounds rounds (moments tried:${summary%,}); $failures failures"
[ "$failures" -eq 0 ]
