#!/usr/bin/env bash
# The README's first command: installs, builds, and runs a real prompt through the default
# model with chunked INT8 prefill, printing the answer (stdout) and the measured speed (stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec ./build/octet run --chat --mode int8 -n 160 --temp 0 \
  -p "${1:-Explain in three short sentences why the sky is blue, then give one everyday example of the same effect.}"
