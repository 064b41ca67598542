#!/usr/bin/env bash
# Measures `klab list` (target ≤ 20 ms) and `klab lint` of the whole catalog (≤ 100 ms) with
# hyperfine, on the release binary. Prints hyperfine's summary; changes nothing.
# Last measured (2 cores, shared, loaded; medians of 3 runs): list 7.6 ms, lint 103 ms,
# --version 3.1 ms. See README.md "Tests and benchmarks".
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 3; }
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/klab"
hyperfine --warmup 5 --runs 50 -N "$bin list" "$bin lint" "$bin render kluster-005"
