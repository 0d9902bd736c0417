#!/usr/bin/env bash
# Checks that a simulated run gives the same trace in a debug and a release build: builds
# both `edgesim` binaries (the debug one entirely at opt-level 0, although the workspace's
# dev profile optimises the simulator and the server for the tests' sake), runs every scenario in scenarios/ at seeds 0..SEEDS with --trace
# in each, and compares the whole output (the last 400 trace lines, the verdict line with
# the hash of the entire trace, the exit code).
#
# Optimisation must not change a schedule: a difference means the simulator depends on
# something other than the seed (addresses, uninitialised data, float rounding, overflow
# checks that only debug builds make).
#
# Usage: scripts/debug-release-trace.sh [SEEDS] [SCENARIO...]
# Set CARGO_TARGET_DIR to build elsewhere than ./target.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-20}"
shift || true
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    scenarios=(scenarios/*.toml)
fi
target="${CARGO_TARGET_DIR:-target}"
# Its own target directory, so that the tests' dev builds are not rebuilt.
cargo build --quiet --bin edgesim --target-dir "$target/opt0" \
    --config 'profile.dev.package.edgesim.opt-level=0' \
    --config 'profile.dev.package.edgesim-sim.opt-level=0'
cargo build --quiet --release --bin edgesim
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
runs=0
differ=0
for scenario in "${scenarios[@]}"; do
    for seed in $(seq 0 $((seeds - 1))); do
        for profile in debug release; do
            bin="$target/$profile/edgesim"
            [ "$profile" = debug ] && bin="$target/opt0/debug/edgesim"
            set +e
            "$bin" run "$scenario" --seed "$seed" --trace \
                >"$out/$profile" 2>&1
            echo "exit=$?" >>"$out/$profile"
            set -e
        done
        runs=$((runs + 1))
        if ! cmp -s "$out/debug" "$out/release"; then
            differ=$((differ + 1))
            echo "DIFFER: $scenario --seed $seed"
            diff "$out/debug" "$out/release" | head -n 20 || true
        fi
    done
    echo "$scenario: last verdict line: $(grep '^verdict=' "$out/release" | tail -n 1)"
done
echo "compared=$runs differ=$differ"
[ "$differ" -eq 0 ]
