#!/usr/bin/env bash
# Real runs of every prefill scheduling policy/processor configuration on this machine, with
# the simulator's prediction from a profile fitted in the same session (docs/scheduler.md).
# Usage: scripts/sched_measure.sh MODEL NAME [PROMPTS]   (writes docs/sched/NAME-*.{json,jsonl,png})
# Env: REPS (rounds of --compare-sched, default 3), PROFILE_PROMPTS (prompts the profile is
# fitted on, default the same as PROMPTS), EXTRA (more octet flags, e.g. "--calib FILE"),
# PROFILE_REPS (runs per configuration for the fit, default 3), KEEP_PROFILE=1 (reuse an existing profile), NO_TRACES=1 (skip the Gantt PNGs).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1; NAME=$2; PROMPTS=${3:-256,512,1024,2048}
OCTET=${OCTET_BIN:-build/octet}
EXTRA=${EXTRA:-}
OUT=docs/sched
mkdir -p "$OUT"
PROF=$OUT/profile-$NAME.json
# 1. Fit the cost models (separate runs from the ones predicted below).
if [ -z "${KEEP_PROFILE:-}" ] || [ ! -f "$PROF" ]; then
  # shellcheck disable=SC2086
  "$OCTET" bench -m "$MODEL" $EXTRA --profile "$PROF" --prompts "${PROFILE_PROMPTS:-$PROMPTS}" \
    --reps "${PROFILE_REPS:-3}" \
    | tee "$OUT/$NAME-profile.txt"
fi
# 2. Measured vs predicted, every configuration, round robin in one process (best of --reps).
# shellcheck disable=SC2086
"$OCTET" bench -m "$MODEL" $EXTRA --compare-sched --prompts "$PROMPTS" --reps "${REPS:-3}" \
  --sim-profile "$PROF" --json > "$OUT/$NAME-runs.jsonl"
# 3. Traces (PNG Gantt charts) at 1024.
for cfg in "inorder int8:1,float:1" "greedy int8:1,float:1" "ooo int8:1,float:1" \
           "critical int8:1,float:1" "sequential shared:2"; do
  [ -n "${NO_TRACES:-}" ] && break
  set -- $cfg
  # shellcheck disable=SC2086
  "$OCTET" bench -m "$MODEL" $EXTRA --sim-profile "$PROF" --prompts 1024 --gen 0 --policy "$1" --processors "$2" \
    --trace "$OUT/$NAME-$1-${2%%:*}-1024.json" --json 2>/dev/null > /dev/null
  rm -f "$OUT/$NAME-$1-${2%%:*}-1024.json"   # keep the PNG; traces are large
done
.venv/bin/python scripts/sched_report.py "$OUT/$NAME-runs.jsonl"
