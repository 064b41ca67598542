#!/usr/bin/env bash
# Builds klab (release), generates a ~520 MB realistic audit log once (kept at $LOG for reruns),
# and runs bench.py: klab vs jq vs DuckDB on that log, with a count check. Leaves only the log.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOG=${LOG:-/tmp/klab-audit-bench.log}
SIZE=${SIZE:-520M}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --bin klab
KLAB="$TARGET/release/klab"
if [ ! -s "$LOG" ]; then
  "$KLAB" audit generate --size "$SIZE" --seed 1 --out "$LOG"
fi
python3 bench/audit/bench.py "$LOG" "$KLAB"
