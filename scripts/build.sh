#!/usr/bin/env bash
# Configures and builds octet into build/ (Release, warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${OCTET_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOCTET_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
