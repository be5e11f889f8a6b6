#!/usr/bin/env bash
# Builds the GGUF libFuzzer target with clang (ASan + UBSan) into build-fuzz/ and runs it.
#   scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]     (default 60 s)
# Needs clang++ and the libFuzzer runtime. On Debian/Ubuntu (not installed by setup.sh):
#   sudo apt-get install clang-14 libclang-rt-14-dev      (or clang + libclang-rt-dev)
# The seed corpus (small valid GGUFs from octet's writer, one per tensor type) is regenerated
# into fuzz/corpus/ (git-ignored), which also keeps what the fuzzer finds between runs.
# Crash reproducers land in fuzz/crash-*; replay one with build-fuzz/fuzz/gguf_fuzz FILE.
# With -jobs=N libFuzzer logs to ./fuzz-<i>.log (git-ignored). Example of a long quiet run:
#   nice scripts/fuzz.sh 600 -jobs=1
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
CXX_BIN=${CXX:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$CXX_BIN" ] || ! "$CXX_BIN" --version | grep -qi clang; then
  echo "fuzz.sh: needs clang++ (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOCTET_FUZZ=ON -DOCTET_TESTS=OFF -DOCTET_WERROR=ON >/dev/null
cmake --build build-fuzz --target gguf_fuzz gguf_seeds -j"${JOBS:-2}"
mkdir -p fuzz/corpus
build-fuzz/fuzz/gguf_seeds fuzz/corpus
# Inputs up to 64 KiB: enough for headers, tables and a few tensors of every type.
exec build-fuzz/fuzz/gguf_fuzz -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 -artifact_prefix=fuzz/ "$@" fuzz/corpus
