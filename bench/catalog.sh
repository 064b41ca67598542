#!/usr/bin/env bash
# Measures `klab list` (target ≤ 20 ms) and `klab lint` of the whole catalog (≤ 100 ms) with
# hyperfine, on the release binary. Prints hyperfine's summary; changes nothing.
# Last measured (2 cores, shared, loaded; medians of 3 runs): list 7.6 ms, lint 103 ms,
# --version 3.1 ms; alias bomb 99 ms, 20 MiB file 97 ms (idle, one run, before the 1 MiB read cap). See README.md "Tests and benchmarks".
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 3; }
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/klab"
hyperfine --warmup 5 --runs 50 -N "$bin list" "$bin lint" "$bin render kluster-005"
# Hostile input (exit code 1 is the expected answer, hence -i): an alias bomb stopped by the
# budgets, and a 20 MiB file refused before parsing. tests/lint_fixtures.rs proves that both are
# refused, with which message; how fast is measured here, never in a test.
big="$(mktemp -d)"; trap 'rm -rf "$big"' EXIT
{ printf 'apiVersion: klab.dev/v1\nkind: Scenario\nstory: |\n'; yes '  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -c 20971520 || true; } >"$big/huge.yaml"
hyperfine --warmup 3 --runs 30 -N -i "$bin lint tests/fixtures/lint/alias-bomb.yaml" "$bin lint $big/huge.yaml"
