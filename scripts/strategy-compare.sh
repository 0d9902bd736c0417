#!/usr/bin/env bash
# Compares the reduced random walk with the every-call walk on every catalogue flaw (the
# "bug-finding does not get worse" table of README.md's Performance section). For each
# scenarios/flaw-*.toml and scenarios/netpoll-*.toml that expects a failure, two copies pin
# `strategy = "random"` (the reduced walk) and `strategy = "every-call"` in their [sim]
# section (swarm mode still draws every other knob), and each runs BLOCKS blocks of BLOCK
# seeds (`edgesim explore COPY --seeds A..B`). Prints, per strategy, the median over the
# blocks of the first failing seed's offset in its block (BLOCK when none failed), the
# failing seeds of all BLOCKS x BLOCK, and the median offset those imply. Seeds fail
# independently, so the offset of the first failure is geometric with the failure rate p,
# and its median is ceil(ln 0.5 / ln(1 - p)) - 1: an estimate from every seed, where the
# median over a few dozen blocks moves by several seeds between runs of the same build.
# Usage: scripts/strategy-compare.sh [scenario...]
# Env: BLOCK (50), BLOCKS (40), JOBS (2), EDGESIM_BIN (a copy of the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
BLOCK=${BLOCK:-50}
BLOCKS=${BLOCKS:-40}
JOBS=${JOBS:-2}
cargo build --release --quiet
BIN=${EDGESIM_BIN:-target/release/edgesim}
if [ $# -gt 0 ]; then
    files=("$@")
else
    files=()
    for f in scenarios/flaw-*.toml scenarios/netpoll-*.toml; do
        grep -q '^verdict = "pass"' "$f" || files+=("$f")
    done
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A copy of $1 with `strategy = $2` as the first key of its [sim] section (added if absent).
pinned() {
    local out="$work/$(basename "$1" .toml)-$2.toml"
    if grep -q '^\[sim\]' "$1"; then
        sed "s/^\[sim\]$/[sim]\nstrategy = \"$2\"/" "$1" >"$out"
    else
        printf '%s\n\n[sim]\nstrategy = "%s"\n' "$(cat "$1")" "$2" >"$out"
    fi
    echo "$out"
}

# "median fails implied" of one pinned copy.
measure() {
    local copy=$1 firsts=() fails=0 line first
    for ((k = 0; k < BLOCKS; k++)); do
        # A failing verdict exits non-zero: that is data here, not an error.
        line=$("$BIN" explore "$copy" --seeds "$((k * BLOCK))..$(((k + 1) * BLOCK))" \
            --jobs "$JOBS" 2>/dev/null | grep '^explored=' || true)
        fails=$((fails + $(echo "$line" | sed -n 's/.* failures=\([0-9]*\).*/\1/p')))
        first=$(echo "$line" | sed -n 's/.* first_failure=\([0-9a-z]*\).*/\1/p')
        if [ "$first" = none ]; then firsts+=("$BLOCK"); else firsts+=("$((first - k * BLOCK))"); fi
    done
    local sorted n median
    sorted=$(printf '%s\n' "${firsts[@]}" | sort -n)
    n=${#firsts[@]}
    # The median of an even count is the mean of the two middle values.
    median=$(echo "$sorted" | awk -v n="$n" '{ v[NR] = $1 } END {
        if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }')
    local implied
    implied=$(awk -v f="$fails" -v n="$((BLOCKS * BLOCK))" 'BEGIN {
        p = f / n
        if (p == 0) { print "none"; exit }
        if (p == 1) { print 0; exit }
        x = log(0.5) / log(1 - p)
        c = int(x); if (c < x) c++
        print c - 1 }')
    echo "$median $fails $implied"
}

printf '%-30s %-30s %s\n' scenario "reduced: median fails implied" \
    "every-call: median fails implied"
for file in "${files[@]}"; do
    reduced=$(measure "$(pinned "$file" random)")
    every=$(measure "$(pinned "$file" every-call)")
    printf '%-30s %-30s %s\n' "$(basename "$file" .toml)" "$reduced" "$every"
done
