#!/usr/bin/env bash
# Kernel timeline of the CUDA MoE layer on the GPU machine, in its CUDA graph with PDL overlap as benchmarked: when
# each kernel starts and ends relative to the layer's first (bench/timeline). Medians over the timed replays.
#   scripts/gpu-timeline.sh [preset] [mode] [tokens...]     e.g. scripts/gpu-timeline.sh qwen3-30b-a3b w4a16 64 256
# Builds the CLI and the tracer of the `hopper` preset. Output: $OUT/timeline.txt (or /tmp/timeline.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-qwen3-30b-a3b}"; mode="${2:-w4a16}"; shift $(( $# < 2 ? $# : 2 ))
tokens=("${@:-64 256}")
cmake --preset hopper -DPython3_EXECUTABLE="$(command -v python3)" \
  ${FP4MOE_COMMIT:+-DFP4MOE_GIT_COMMIT="$FP4MOE_COMMIT"} >/dev/null
cmake --build --preset hopper -j "$(nproc)" --target fp4moe_cli fp4moe_cupti_trace >/dev/null
report="${OUT:-/tmp}/timeline.txt"
trace=$(mktemp)
: >"$report"
for t in ${tokens[@]}; do
  echo "== $preset $mode T=$t" | tee -a "$report"
  CUDA_INJECTION64_PATH="$PWD/build/hopper/lib/libfp4moe_cupti_trace.so" FP4MOE_TRACE_OUT="$trace" \
    build/hopper/bin/fp4moe bench --backend cuda --preset "$preset" --mode "$mode" --tokens "$t" --graph \
    --baseline none --seed 7 --min-ms 20 | grep -E "^ +$t " | tee -a "$report"
  python3 bench/timeline/timeline.py "$trace" | tee -a "$report"
done
rm -f "$trace"
