#!/usr/bin/env bash
# The soak of the pitfall catalogue: the correct server (each scenarios/flaw-*.toml with its
# flaw removed) on seeds 0..5000 per scenario, through the test `catalogue::soak_without_flaws`
# (which is skipped unless EDGESIM_SOAK=1). Release build; takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGESIM_SOAK=1 cargo test --release --test it catalogue::soak_without_flaws -- --nocapture
