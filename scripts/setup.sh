#!/usr/bin/env bash
# Installs what fp4moe needs on a fresh Debian/Ubuntu machine with the CUDA toolkit, then configures and builds.
# Idempotent: packages already present are not reinstalled, an existing build is reused.
#   scripts/setup.sh [preset]     (preset: release (default), debug, hopper)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"

apt_packages=(ninja-build g++ libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
              python3-venv python3-pip)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  else
    echo "setup: nvcc not found: install the CUDA 13 toolkit (it is needed to compile the CUDA code)" >&2
    exit 1
  fi
fi

# A project virtualenv, pinned: CMake (Debian's 3.25 predates CUDA C++20 support for nvcc 13) and the Python
# packages of the interoperability tests (files written by numpy + safetensors).
if [ ! -x .venv/bin/cmake ] || ! .venv/bin/python -c "import numpy, safetensors" 2>/dev/null; then
  echo "setup: creating .venv (cmake, numpy, safetensors)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "cmake==3.31.6" "numpy==2.2.6" "safetensors==0.5.3"
fi

.venv/bin/cmake --preset "$preset" -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
.venv/bin/cmake --build --preset "$preset" -j "$(nproc)"
echo "setup: built build/$preset"
