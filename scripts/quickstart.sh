#!/usr/bin/env bash
# The README's first command: installs, builds, and runs a real prompt through the default
# model with chunked INT8 prefill, printing the answer (stdout) and the measured speed (stderr).
# The default model is a small *base* (not chat-tuned) model, so the prompt is a passage with
# a question in few-shot form. Pass your own prompt as the first argument.
# quickstart_prompt.txt ends on "A:" with no newline, like its worked answer: with one, the
# first answer token is a near three-way tie even in FP32 (and INT8 then copies the passage).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
if [ $# -gt 0 ]; then
  exec ./build/octet run --mode int8 -n 128 --temp 0 -p "$1"
fi
exec ./build/octet run --mode int8 --chunk 64 -n 64 --temp 0 --stop "Q:" -f scripts/quickstart_prompt.txt
