#!/usr/bin/env bash
# Builds nabla (installing what is missing) and runs the whole test suite.
#   scripts/test.sh              the normal build
#   scripts/test.sh --sanitize   under AddressSanitizer + UBSan
#   scripts/test.sh --valgrind   under valgrind (memcheck, no leaks allowed)
# Ends with Check's summary line, summed over the Check binaries (the
# library's and the tool's).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
    ""|--valgrind) bash scripts/setup.sh; build=build ;;
    --sanitize) bash scripts/setup.sh --sanitize; build=build-sanitize ;;
    *) echo "usage: scripts/test.sh [--sanitize|--valgrind]" >&2; exit 2 ;;
esac

# Adds up lines "99%: Checks: 609, Failures: 1, Errors: 0" into one.
total() {
    awk '{c += $3; f += $5; e += $7; n++}
         END {if (n) printf "%d%%: Checks: %d, Failures: %d, Errors: %d\n",
                            c ? int(100 * (c - f - e) / c) : 0, c, f, e}'
}

# The sanitizers slow every test several times over: Check's per-test
# timeouts (4 s by default) stretch with them.
if [ "$mode" = "--sanitize" ]; then
    export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-5}
fi

status=0
if [ "$mode" = "--valgrind" ]; then
    make -C "$build" -s check-valgrind > "$build/valgrind.log" 2>&1 || status=$?
    tail -n 30 "$build/valgrind.log"
    summary=$(grep -hE '^[0-9]+%: Checks:' "$build/valgrind.log" | total || true)
else
    make -C "$build" -s -j"$(nproc)" check > "$build/check.log" 2>&1 || status=$?
    grep -E '^(PASS|FAIL|ERROR|XPASS|# )' "$build/check.log" || true
    # Failures in detail, from Check's own log.
    grep -hE ':[EF]:' "$build"/tests/*.log 2>/dev/null || true
    summary=$(grep -hE '^[0-9]+%: Checks:' "$build"/tests/check_*.log | total || true)
fi
[ -n "$summary" ] || { echo "test: no Check summary found (build failed?)" >&2; tail -n 40 "$build/check.log" >&2 || true; exit 1; }
echo "$summary"
exit $status
