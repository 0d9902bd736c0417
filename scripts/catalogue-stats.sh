#!/usr/bin/env bash
# Regenerates the numbers of docs/PITFALLS.md for every scenarios/flaw-*.toml:
#  - seeds to first detection in the simulator: 20 disjoint windows of WINDOW seeds
#    (window k is seeds k*WINDOW .. (k+1)*WINDOW-1); in each, the scenario runs seed after
#    seed (`edgesim run X --seed N`) until the verdict is not `pass`; the count includes the
#    failing seed (1 = the window's first seed failed). A window without a failure counts as
#    ">WINDOW". Prints the median and the maximum over the 20 windows.
#  - real Linux: REAL_RUNS runs of `edgesim run X --backend real` (loopback, each bounded by
#    `timeout`), counting the runs whose verdict is not `pass`.
# Usage: scripts/catalogue-stats.sh [scenario...]   (default: every scenarios/flaw-*.toml)
# Env: WINDOW (200), WINDOWS (20), REAL_RUNS (20), REAL_TIMEOUT_SECS (30), SKIP_REAL=1,
# EDGESIM_BIN (a copy of the binary, so a rebuild during the run changes nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
WINDOW=${WINDOW:-200}
WINDOWS=${WINDOWS:-20}
REAL_RUNS=${REAL_RUNS:-20}
REAL_TIMEOUT_SECS=${REAL_TIMEOUT_SECS:-30}
cargo build --release --quiet
BIN=${EDGESIM_BIN:-target/release/edgesim}
if [ $# -gt 0 ]; then files=("$@"); else files=(scenarios/flaw-*.toml); fi

verdict_of() { # the verdict= field of the last line of a run
    # A failing verdict exits 1: that is data here, not an error.
    { "$@" 2>/dev/null || true; } | tail -1 | sed -n 's/^verdict=\([a-z]*\).*/\1/p'
}

printf '%-34s %-8s %-12s %-10s %s\n' scenario expect sim_median sim_max real_failures
for file in "${files[@]}"; do
    expect=$(sed -n 's/^verdict = "\(.*\)"/\1/p' "$file")
    counts=()
    for ((k = 0; k < WINDOWS; k++)); do
        found=">$WINDOW"
        for ((i = 0; i < WINDOW; i++)); do
            seed=$((k * WINDOW + i))
            v=$(verdict_of "$BIN" run "$file" --seed "$seed")
            if [ "$v" != pass ]; then found=$((i + 1)); break; fi
        done
        counts+=("$found")
    done
    # Sort numerically with ">N" (never found) above every number.
    sorted=$(printf '%s\n' "${counts[@]}" | sed "s/^>$WINDOW$/$((WINDOW + 1))/" | sort -n)
    median=$(echo "$sorted" | sed -n "$(((WINDOWS + 1) / 2))p")
    max=$(echo "$sorted" | tail -1)
    [ "$median" -gt "$WINDOW" ] && median=">$WINDOW"
    [ "$max" -gt "$WINDOW" ] && max=">$WINDOW"
    real="-"
    if [ "${SKIP_REAL:-0}" != 1 ]; then
        failures=0
        for ((r = 0; r < REAL_RUNS; r++)); do
            v=$(verdict_of timeout "$REAL_TIMEOUT_SECS" "$BIN" run "$file" --backend real)
            if [ "$v" != pass ]; then failures=$((failures + 1)); fi
        done
        real="$failures/$REAL_RUNS"
    fi
    printf '%-34s %-8s %-12s %-10s %s\n' "$(basename "$file" .toml)" "$expect" "$median" "$max" "$real"
done
