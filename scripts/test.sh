#!/usr/bin/env bash
# Sets up, builds and runs every test (GPU tests skip with a visible reason when no GPU is present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
.venv/bin/ctest --preset release -j "$(nproc)" --output-on-failure "$@"
