#!/usr/bin/env bash
# The simulator against turmoil on the standard echo workload (scenarios/bench-echo.toml:
# 16 clients x 50 pingpong round trips of 64 bytes, two sub-reactors), both on one core, in
# the same script run: seeds per second of each and the ratio.
#
# turmoil's peer runs without faults, so the headline compares it with bench-echo in a fixed
# environment (a copy of the scenario with `[sim] swarm = false`: no faults, the scenario
# files' default buffers and latency, the default strategy). bench-echo as shipped, where
# every seed draws its own faults, buffers and strategy (swarm mode), is printed beside it.
#
# turmoil gets its fastest time model (1 ms tick, latency <= 1 ms). Each side runs SEEDS
# seeds (default 2000) three times; the median counts.
#
# The machine has two cores, so the script then runs each side on both: edgesim with
# `--jobs 2` over 2 x SEEDS seeds, turmoil (whose simulation is single-threaded) as two
# processes timed together, each running seeds 0..SEEDS (the peer takes no range; a seed's
# cost does not depend on its number). Seeds are independent, so both sides can use every
# core.
#
# Usage: bench/sim-vs-turmoil.sh [SEEDS]
# Env: EDGESIM_BIN (another edgesim binary, e.g. a copy of an earlier build, to compare builds
# in one quiet moment; the default is the release build this script makes).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-2000}
cargo build --release -q --bin edgesim -p edgesim
# The peers are a workspace of their own (real tokio and mio); same target directory.
cargo build --release -q --bin turmoil-echo --manifest-path bench-peers/Cargo.toml --target-dir target
fixed_dir=$(mktemp -d)
trap 'rm -rf "$fixed_dir"' EXIT
fixed=$fixed_dir/bench-echo-fixed.toml
# The shipped file has no [sim] table (tables may come in any order in TOML).
if grep -q '^\[sim\]' scenarios/bench-echo.toml; then
    sed 's/^\[sim\]$/[sim]\nswarm = false/' scenarios/bench-echo.toml >"$fixed"
else
    { cat scenarios/bench-echo.toml; printf '\n[sim]\nswarm = false\n'; } >"$fixed"
fi
bin=${EDGESIM_BIN:-target/release/edgesim}
median() { sort -g | sed -n 2p; }
# Seeds per second of `edgesim explore` on SCENARIO over SEEDS seeds with JOBS jobs, median of 3.
edgesim_rate() {
    for _ in 1 2 3; do
        "$bin" explore "$1" --seeds "0..$2" --jobs "$3" |
            tail -1 | sed 's/.*seeds_per_sec=//'
    done | median
}
edgesim=$(edgesim_rate "$fixed" "$seeds" 1)
swarm=$(edgesim_rate scenarios/bench-echo.toml "$seeds" 1)
turmoil=$(for _ in 1 2 3; do
    target/release/turmoil-echo --seeds "$seeds" | sed 's/.*seeds_per_sec=//'
done | median)
echo "load_average=$(cut -d' ' -f1 /proc/loadavg) (other work on the machine skews both sides)"
echo "edgesim_seeds_per_sec=$edgesim turmoil_seeds_per_sec=$turmoil (edgesim without swarm)"
awk -v a="$edgesim" -v b="$turmoil" 'BEGIN { printf "ratio_edgesim_over_turmoil=%.2f\n", a / b }'
echo "swarm: edgesim_seeds_per_sec=$swarm (bench-echo as shipped)"
awk -v a="$swarm" -v b="$turmoil" 'BEGIN { printf "swarm: ratio_edgesim_over_turmoil=%.2f\n", a / b }'
edgesim2=$(edgesim_rate "$fixed" "$((2 * seeds))" 2)
swarm2=$(edgesim_rate scenarios/bench-echo.toml "$((2 * seeds))" 2)
turmoil2=$(for _ in 1 2 3; do
    start=$(date +%s.%N)
    target/release/turmoil-echo --seeds "$seeds" >/dev/null &
    target/release/turmoil-echo --seeds "$seeds" >/dev/null
    wait
    awk -v n="$((2 * seeds))" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", n / (e - s) }'
done | median)
echo "two_cores: edgesim_seeds_per_sec=$edgesim2 turmoil_seeds_per_sec=$turmoil2 (edgesim without swarm)"
awk -v a="$edgesim2" -v b="$turmoil2" 'BEGIN { printf "two_cores: ratio_edgesim_over_turmoil=%.2f\n", a / b }'
echo "two_cores: swarm: edgesim_seeds_per_sec=$swarm2"
awk -v a="$swarm2" -v b="$turmoil2" 'BEGIN { printf "two_cores: swarm: ratio_edgesim_over_turmoil=%.2f\n", a / b }'
