#!/usr/bin/env bash
# Runs the whole default test suite (`cargo test --workspace`) RUNS times in a row (default
# 20) and reports every test that ever failed, with how often. A test that fails once in
# twenty is a bug, in the test or in the code, never noise.
#
# Usage: scripts/flake-check.sh [RUNS]
# Logs go to $FLAKE_LOG_DIR (default target/flake-check/). Set CARGO_TARGET_DIR to build
# elsewhere, for instance in a copy of the tree that no one else is rebuilding.
# Exit status: 0 if every run passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
logs="${FLAKE_LOG_DIR:-${CARGO_TARGET_DIR:-target}/flake-check}"
mkdir -p "$logs"
rm -f "$logs"/run-*.log "$logs"/failures.txt

# Build once, so that every run measures the tests and not the compiler.
if ! cargo test --workspace --no-run >"$logs/build.log" 2>&1; then
    echo "the test build failed; see $logs/build.log"
    tail -n 20 "$logs/build.log"
    exit 1
fi

failed_runs=0
for run in $(seq 1 "$runs"); do
    log="$logs/run-$run.log"
    start=$(date +%s)
    # --no-fail-fast: a failing test binary must not hide the results of the others.
    cargo test --workspace --no-fail-fast >"$log" 2>&1
    status=$?
    secs=$(( $(date +%s) - start ))
    passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
    # Named failures, and test binaries that died without naming one (a crash or abort).
    grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' \
        >>"$logs/failures.txt"
    if [ "$status" -ne 0 ] && ! grep -qE '^test .* \.\.\. FAILED$' "$log"; then
        echo "run $run: cargo test exited $status with no failing test named" \
            >>"$logs/failures.txt"
    fi
    if [ "$status" -ne 0 ]; then
        failed_runs=$((failed_runs + 1))
        echo "run $run/$runs: FAILED (exit $status, ${secs}s, $passed passed) log: $log"
    else
        echo "run $run/$runs: ok (${secs}s, $passed passed)"
    fi
done

echo
if [ -s "$logs/failures.txt" ]; then
    echo "tests that failed at least once (count, name):"
    sort "$logs/failures.txt" | uniq -c | sort -rn
fi
echo "runs=$runs failed_runs=$failed_runs"
[ "$failed_runs" -eq 0 ]
