#!/usr/bin/env bash
# The original llm-benchmark's whole pipeline in one step: run a benchmark, write its raw
# records, summary CSV and report, and refresh results/reports/benchmark_report.md (the
# comparison of every run in results/). llmbench does all of that in `llmbench run`; this is
# a thin wrapper with the old script's positional arguments.
#
#   scripts/run_bench.sh [TARGET [MODEL [WORKLOAD]]] [llmbench run flags...]
#
#   scripts/run_bench.sh                                   # the defaults
#   scripts/run_bench.sh vllm-local llama-3.1-8b-instruct high-load
#   scripts/run_bench.sh mock m low-load --set duration=10 # the built-in mock server, 10 s
#
# Defaults (as `llmbench run` prints them): the first target in configs/targets.yaml, the model
# the server serves (among several, the first of configs/models.yaml it serves), high-load.
# Give "" to keep a default and name a later argument: run_bench.sh "" "" low-load.
# LLMBENCH_SET="duration=60 rps=5" adds --set duration=60 --set rps=5.
# The binary: $LLMBENCH, else `llmbench` on PATH, else built with cargo in this checkout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${LLMBENCH:-}" ]; then
  bin="$LLMBENCH"
elif command -v llmbench >/dev/null 2>&1; then
  bin="llmbench"
elif [ -f "$here/../Cargo.toml" ]; then
  cargo build --release --quiet --manifest-path "$here/../Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$here/../target}/release/llmbench"
else
  echo "run_bench.sh: llmbench not found: put it on PATH (cargo install --path .) or set LLMBENCH=/path/to/llmbench" >&2
  exit 2
fi

args=(run)
for flag in --target --model --workload; do
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    if [ -n "$1" ]; then args+=("$flag" "$1"); fi
    shift
  fi
done
for pair in ${LLMBENCH_SET:-}; do
  args+=(--set "$pair")
done
exec "$bin" "${args[@]}" "$@"
