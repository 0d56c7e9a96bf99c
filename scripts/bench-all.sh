#!/usr/bin/env bash
# On the GPU machine, after scripts/gpu-check.sh built build/<preset>: `fp4moe bench` on every model preset,
# JSON results into $OUT/bench-results.tgz (copy them to bench/results/ to commit).
#   scripts/bench-all.sh [mode] [build preset]      (mode: w4a16 (default) or w4a4)
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-w4a16}"
bin="build/${2:-hopper}/bin/fp4moe"
final="${OUT:-/tmp/fp4moe-gpu}"
out="$final/bench-results"
mkdir -p "$out"
device=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-')
status=0
for preset in qwen3-30b-a3b qwen3-235b-a22b deepseek-v3 mixtral-8x7b gpt-oss-120b tiny; do
  echo "== $preset $mode"
  "$bin" bench --backend cuda --preset "$preset" --mode "$mode" --tokens 1,8,64,256,512,1024,4096,16384 --graph \
    --json "$out/${device}-${preset}-${mode}.json" || status=1
done
tar -czf "$final/bench-results.tgz" -C "$final" bench-results && rm -rf "$out"
exit $status
