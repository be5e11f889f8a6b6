#!/usr/bin/env bash
# The README's first command: installs, builds, and runs a real prompt through the default
# model, printing the answer (stdout) and the measured speed (stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec ./build/octet run -n 96 --temp 0 -p "${1:-Explain in three sentences why the sky is blue.}"
