#!/usr/bin/env bash
# One call on the GPU machine: build with every core, run the GPU tests (and the CPU ones), compute-sanitizer
# memcheck + racecheck on the GPU tests, and the CLI on a preset. Logs go to $OUT (or /tmp/fp4moe-gpu).
#   scripts/gpu-check.sh [preset]    (default: hopper = sm_90a only, for fast builds on H100/H200)
set -uo pipefail
cd "$(dirname "$0")/.."
preset="${1:-hopper}"
# Logs go to a folder that is packed into one archive at the end (the device tool returns at most 8 files).
final="${OUT:-/tmp/fp4moe-gpu}"
out="$final/gpu-check"
mkdir -p "$out"
status=0
step() { echo "== $*"; }

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/device.txt"
echo "commit ${FP4MOE_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}" | tee -a "$out/device.txt"

step "build ($preset, $(nproc) jobs)"
# FP4MOE_COMMIT names the commit where the tree arrives without .git (the device tool sends files only).
if ! { cmake --preset "$preset" -DPython3_EXECUTABLE="$(command -v python3)" \
         ${FP4MOE_COMMIT:+-DFP4MOE_GIT_COMMIT="$FP4MOE_COMMIT"} &&
       cmake --build --preset "$preset" -j "$(nproc)"; } >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  exit 1
fi
grep -E "spill|stack frame" "$out/build.log" | grep -v " 0 bytes" | head -5
bin="build/$preset"

step "GPU tests"
ctest --test-dir "$bin" -L gpu --output-on-failure 2>&1 | tee "$out/ctest-gpu.log" | tail -15
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
grep -q "Skipped" "$out/ctest-gpu.log" && { echo "GPU tests were skipped on a GPU machine"; status=1; }

step "CPU tests"
ctest --test-dir "$bin" -L cpu -j "$(nproc)" --output-on-failure 2>&1 | tee "$out/ctest-cpu.log" | tail -3
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# A small subset that still runs every kernel (quantize, route, fc1, fc2, combine, linear, and the wgmma GEMMs with
# every tile size and an idle consumer) in both modes.
subset='QuantizeGpu.StridedRows:*OutOfRangeIdsAddNothing*:*CudaGraphReplayMatchesEager*:*EmptyAndHotExperts*'
subset+=':MoeGpuEdgeCases.*:LinearGpu.StridedRowsAreBitwiseEqualToContiguous:*EveryWorkTileSizeIsBitwiseEqual*'
subset+=':RouteGpu.SmallPathMatchesSortPath:*BlockShapesAreBitwiseEqualOnOddShapes*'
subset+=':*WgmmaTileSizesAreBitwiseEqual*:MoeGpuWgmmaIdleConsumer.*'
for tool in memcheck racecheck; do
  step "compute-sanitizer $tool"
  compute-sanitizer --tool "$tool" --error-exitcode 3 "$bin/tests/fp4moe_gpu_tests" --gtest_filter="$subset" \
    >"$out/sanitizer-$tool.log" 2>&1 || status=1
  grep -E "tests ran|PASSED|FAILED|SUMMARY" "$out/sanitizer-$tool.log" | tail -4
done

step "fp4moe CLI: info, and check (cuda vs the CPU reference)"
"$bin/bin/fp4moe" info | tee "$out/info.txt"
check() { "$bin/bin/fp4moe" check --backend cuda "$@" >>"$out/check.txt" 2>&1 || { status=1; echo "FAIL: check $*"; }; }
for mode in w4a16 w4a4; do
  for act in silu gelu_tanh relu2 swiglu_clamped; do check --preset tiny --tokens 100 --mode $mode --activation $act; done
  check --preset qwen3-30b-a3b --tokens 257 --mode $mode
  check --preset gpt-oss-120b --tokens 7 --mode $mode
done
grep -E "^(check|backend|PASS|FAIL|error)" "$out/check.txt" | cut -c1-150

step "short bench (qwen3-30b-a3b, W4A16, graph)"
"$bin/bin/fp4moe" bench --backend cuda --preset qwen3-30b-a3b --tokens 1,8,64,256,4096 --graph \
  --json "$out/bench-short.json" 2>&1 | tee "$out/bench-short.txt" || status=1

echo "gpu-check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
tar -czf "$final/gpu-check.tgz" -C "$final" gpu-check && rm -rf "$out"
exit $status
