#!/usr/bin/env bash
# The benchmark step of the example CI pipelines (github-actions.yml, gitlab-ci.yml): run a
# workload with assertions against a server, compare it with a stored baseline run under
# regression gates, and leave the reports and JUnit files in $OUT for the CI to publish.
# tests/ci_examples.rs runs this same script, so the pipelines cannot rot.
#
# Environment (all optional):
#   LLMBENCH      the llmbench binary                      (default: llmbench on PATH)
#   LLMBENCH_URL  the server's OpenAI base URL            (default: start the built-in mock)
#   API_KEY_ENV   name of the variable holding its API key (default: none)
#   MODEL         model name                               (default: the one the server serves)
#   SCRIPT        workload script, path or name            (default: ramp-and-gate)
#   SET           extra --set pairs, e.g. "peak=40 hold=60"
#   BASELINE      results folder of the baseline run       (default: no comparison)
#   GIT_SHA       labels the run                           (default: $GITHUB_SHA, $CI_COMMIT_SHA)
#   OUT           where everything goes                    (default: ci-out)
# Exit code: llmbench's (1: an assertion or gate failed, 2: bad input, 3: nothing succeeded).
set -euo pipefail

LLMBENCH=${LLMBENCH:-llmbench}
OUT=${OUT:-ci-out}
SCRIPT=${SCRIPT:-ramp-and-gate}
GIT_SHA=${GIT_SHA:-${GITHUB_SHA:-${CI_COMMIT_SHA:-unknown}}}
mkdir -p "$OUT"

url=${LLMBENCH_URL:-}
if [ -z "$url" ]; then
  # The built-in mock as a server of its own, on a free port. For a real benchmark set
  # LLMBENCH_URL (and API_KEY_ENV) to your endpoint instead.
  "$LLMBENCH" mock --port 0 --ttft-ms 40 --ttft-jitter-ms 5 --itl-ms 2 2> "$OUT/mock.log" &
  mock=$!
  trap 'kill "$mock" 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/v1' "$OUT/mock.log" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "the mock did not start: $(cat "$OUT/mock.log")" >&2; exit 2; }
fi

args=(--url "$url" --results "$OUT/results" --no-progress --label "git_sha=$GIT_SHA"
      --junit "$OUT/junit-run.xml" --export-json "$OUT/run.json")
[ -n "${API_KEY_ENV:-}" ] && args+=(--api-key-env "$API_KEY_ENV")
[ -n "${MODEL:-}" ] && args+=(--model "$MODEL")
for pair in ${SET:-}; do args+=(--set "$pair"); done

status=0
"$LLMBENCH" "$SCRIPT" "${args[@]}" || status=$?

# The run just made: the newest raw records file.
new=$(ls -t "$OUT"/results/raw/*.jsonl 2>/dev/null | grep -v '\.telemetry\.jsonl$' | head -1 || true)
if [ -n "${BASELINE:-}" ] && [ -n "$new" ]; then
  base=$(ls "$BASELINE"/raw/*.jsonl | grep -v '\.telemetry\.jsonl$' | head -1)
  "$LLMBENCH" compare "$base" "$new" \
    --fail-on 'ttft_ms_p95 > +10%' --fail-on 'e2el_ms_p95 > +10%' --fail-on 'success_rate < -1' \
    --junit "$OUT/junit-compare.xml" --export-json "$OUT/compare.json" \
    --summary-md "${GITHUB_STEP_SUMMARY:-$OUT/summary.md}" || { c=$?; [ "$status" -ne 0 ] || status=$c; }
fi
exit "$status"
