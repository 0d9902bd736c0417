#!/usr/bin/env bash
# Runs each parser fuzz target for SECONDS (default 600) one after the other, and prints
# libFuzzer's closing statistics (executions, exec/s) per target.
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer); the machine has one stable toolchain,
# so RUSTC_BOOTSTRAP=1 lets that stable compiler accept them. See fuzz/README.md.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]    (targets: scenario ops)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(scenario ops)
fi
export RUSTC_BOOTSTRAP=1
status=0
for target in "${targets[@]}"; do
    log="target/fuzz-$target.log"
    mkdir -p target
    echo "== $target: ${seconds}s, log in fuzz/$log"
    # One job, so the other cores stay free for builds and tests; -max_len keeps inputs
    # near the size of real scenario files and scripts.
    if ! cargo fuzz run -O "$target" -- -max_total_time="$seconds" -max_len=4096 \
        -print_final_stats=1 >"$log" 2>&1; then
        echo "!! $target found a failing input (see fuzz/artifacts/$target/ and $log)"
        status=1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
done
exit $status
