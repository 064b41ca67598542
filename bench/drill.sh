#!/usr/bin/env bash
# Inject and reset times on a warm lab (targets in ../shared/BENCHMARKS.md: inject ≤ 5 s,
# reset ≤ 10 s), read from `klab selftest -o json`: "inject" is every fault step with its live
# verification, "reset" undoes the whole drill (setup included), as `klab reset` does.
#   bash bench/drill.sh [ID…]        # on the current lab (KLAB_LAB, default `klab`)
# On the real-node tier: eval "$(ci/realnode/up)"; klab up --nodes 2; bash bench/drill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "jq is missing" >&2; exit 3; }
cargo build --release --quiet
out=$(mktemp)
target/release/klab -o json selftest --keep-going "$@" >"$out" || true
jq -r '
  ["drill", "inject s", "reset s", "inject ≤ 5 s", "reset ≤ 10 s"],
  (.scenarios[] | select(.status != "skipped")
    | (.phases | map({(.name): .seconds}) | add) as $p
    | [.id, ($p.inject | . * 10 | round / 10), ($p.reset | . * 10 | round / 10),
       (if $p.inject <= 5 then "met" else "NOT met" end), (if $p.reset <= 10 then "met" else "NOT met" end)])
  | @tsv' "$out" | column -t -s $'\t'
rm -f "$out"
