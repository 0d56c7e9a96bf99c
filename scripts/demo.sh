#!/usr/bin/env bash
# The main job: set up, build, then run fp4moe on a model preset: what the machine has, a correctness check
# against the CPU reference, and a short timing. Uses the GPU when there is one (backend auto), else the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
bin=build/release/bin/fp4moe
$bin info
$bin check --backend auto --preset qwen3-30b-a3b --tokens 16 --mode w4a16
$bin check --backend auto --preset qwen3-30b-a3b --tokens 16 --mode w4a4
if $bin info | grep -q "backend auto -> cuda"; then
  $bin bench --backend cuda --preset qwen3-30b-a3b --tokens 1,8,64,512,4096 --graph
else
  $bin bench --backend cpu --preset tiny --tokens 1,8,64,512
fi
