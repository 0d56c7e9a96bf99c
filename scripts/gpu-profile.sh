#!/usr/bin/env bash
# Per-kernel profile of the CUDA MoE on the GPU machine (Nsight Compute): time, DRAM and L2 bytes, throughputs,
# occupancy and the top warp stall reasons of every kernel of one layer call per token count.
#   scripts/gpu-profile.sh [preset] [mode] [tokens...]     e.g. scripts/gpu-profile.sh qwen3-30b-a3b w4a16 1 64 256
# Builds the `hopper` preset first when needed. Output: $OUT/profile.txt (or /tmp/profile.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-qwen3-30b-a3b}"; mode="${2:-w4a16}"; shift $(( $# < 2 ? $# : 2 ))
tokens=("${@:-1 64 256}")
[ -x build/hopper/bin/fp4moe ] || {
  cmake --preset hopper ${FP4MOE_COMMIT:+-DFP4MOE_GIT_COMMIT="$FP4MOE_COMMIT"} >/dev/null &&
    cmake --build --preset hopper -j "$(nproc)" >/dev/null; }
report="${OUT:-/tmp}/profile.txt"
stalls=$(for s in long_scoreboard wait math_pipe_throttle lg_throttle barrier mio_throttle short_scoreboard \
                  not_selected selected no_instruction dispatch_stall; do
           printf 'smsp__average_warps_issue_stalled_%s_per_issue_active.ratio,' "$s"; done)
stalls=${stalls%,}
: >"$report"
for t in ${tokens[@]}; do
  echo "== $preset $mode T=$t" | tee -a "$report"
  ncu --csv --page details --section SpeedOfLight --section Occupancy --section WarpStateStats \
      --metrics "dram__bytes_read.sum,lts__t_bytes.sum,launch__registers_per_thread,$stalls" \
      build/hopper/bin/fp4moe check --backend cuda --preset "$preset" --mode "$mode" --tokens "$t" 2>/dev/null |
    python3 scripts/ncu_summary.py | tee -a "$report"
done
