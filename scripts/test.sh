#!/usr/bin/env bash
# Sets up, builds and runs every test (GPU tests skip with a visible reason when no GPU is present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
.venv/bin/ctest --preset release -j "$(nproc)" --output-on-failure "$@"
# Say why GPU tests were skipped, if they were.
build/release/bin/fp4moe info | grep -E "^(GPUs|GPU [0-9]|backend)"
