#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
# The suite writes a few GB (the oracle cache, logits files): a full disk otherwise shows up
# as scattered "cannot write" failures.
cache="${OCTET_TEST_CACHE:-/tmp/octet-test-cache}"
mkdir -p "$cache"
free_kb=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
echo "test cache $cache: $((free_kb / 1048576)) GiB free"
if [ "$free_kb" -lt $((4 * 1048576)) ]; then
  echo "warning: under 4 GiB free for the test cache; tests that write large files may fail" >&2
fi
cd build
ctest --output-on-failure -j1 "$@"
