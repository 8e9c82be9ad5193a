#!/usr/bin/env bash
# Runs every benchmark binary side by side with its baseline. Usage: bench/run_all.sh [BUILD_DIR]
# Benchmarks print the baseline, cleanroom's figure and the ratio. They are slow
# (the prepare one converts 10 million rows several times): run them on a quiet machine.
set -euo pipefail
build="${1:-build}"
for b in "$build"/bin/*_bench; do
  [ -x "$b" ] || continue
  echo "=== $(basename "$b")"
  "$b" --benchmark_counters_tabular=true
done
