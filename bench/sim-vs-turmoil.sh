#!/usr/bin/env bash
# The simulator against turmoil on the standard echo workload (scenarios/bench-echo.toml:
# 16 clients x 50 pingpong round trips of 64 bytes, two sub-reactors), both on one core, in
# the same script run: seeds per second of each and the ratio.
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
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-2000}
cargo build --release -q --bin edgesim -p edgesim
# The peers are a workspace of their own (real tokio and mio); same target directory.
cargo build --release -q --bin turmoil-echo --manifest-path bench-peers/Cargo.toml --target-dir target
median() { sort -g | sed -n 2p; }
edgesim=$(for _ in 1 2 3; do
    target/release/edgesim explore scenarios/bench-echo.toml --seeds "0..$seeds" --jobs 1 |
        tail -1 | sed 's/.*seeds_per_sec=//'
done | median)
turmoil=$(for _ in 1 2 3; do
    target/release/turmoil-echo --seeds "$seeds" | sed 's/.*seeds_per_sec=//'
done | median)
echo "load_average=$(cut -d' ' -f1 /proc/loadavg) (other work on the machine skews both sides)"
echo "edgesim_seeds_per_sec=$edgesim turmoil_seeds_per_sec=$turmoil"
awk -v a="$edgesim" -v b="$turmoil" 'BEGIN { printf "ratio_edgesim_over_turmoil=%.2f\n", a / b }'
edgesim2=$(for _ in 1 2 3; do
    target/release/edgesim explore scenarios/bench-echo.toml --seeds "0..$((2 * seeds))" --jobs 2 |
        tail -1 | sed 's/.*seeds_per_sec=//'
done | median)
turmoil2=$(for _ in 1 2 3; do
    start=$(date +%s.%N)
    target/release/turmoil-echo --seeds "$seeds" >/dev/null &
    target/release/turmoil-echo --seeds "$seeds" >/dev/null
    wait
    awk -v n="$((2 * seeds))" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", n / (e - s) }'
done | median)
echo "two_cores: edgesim_seeds_per_sec=$edgesim2 turmoil_seeds_per_sec=$turmoil2"
awk -v a="$edgesim2" -v b="$turmoil2" 'BEGIN { printf "two_cores: ratio_edgesim_over_turmoil=%.2f\n", a / b }'
