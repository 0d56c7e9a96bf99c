// Kernel launches with programmatic dependent launch (PDL, sm_90+): the next kernel of the layer is scheduled while
// the current one drains, and waits in-kernel (griddep_wait) before it reads anything the previous kernel wrote.
// On older GPUs the attribute is not set and launches serialize as usual; the device calls compile to nothing.
// The layer's rule: every block calls griddep_wait before it calls griddep_launch_dependents or exits. Then a
// kernel is launched only after its predecessor waited for the one before, so anything written two launches back
// is complete and visible even before the kernel's own griddep_wait (FC2 reads the routing tiles and prefetches
// weights that early). One exception, argued where it is made: the streaming FC2 with the per-tile handoff
// (fc2_kernel.cuh) lets the combine launch before its own wait; what the combine reads before its wait was
// complete before FC2 launched, and every FC2 block still waits before it exits.
#pragma once

#include <cuda_runtime.h>

#include <mutex>
#include <utility>

#include "cuda/common/cuda_check.hpp"

namespace fp4moe::cuda {

// Blocks until the grids this one depends on have completed and their memory is visible. Call before the first
// read of a predecessor's output (or of the caller's inputs: the layer's first kernel may overlap the caller's).
__device__ __forceinline__ void griddep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the dependent grid start launching (once every block of this grid has called it or exited).
__device__ __forceinline__ void griddep_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Whether the current device supports PDL (compute capability 9.0+), queried once per device.
bool pdl_supported();

// The current device and one of its attributes (host side of the launchers).
inline int current_device() {
  int device = 0;
  FP4MOE_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}
inline int current_device_attribute(cudaDeviceAttr attribute) {
  int value = 0;
  FP4MOE_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, current_device()));
  return value;
}

// Devices with their own entry in per-device caches and once-flags; ordinals past it are queried every call.
inline constexpr int kMaxCachedDevices = 64;

// Runs fn once per current device for the call site that owns `flags` (kernel attributes are per device).
template <class Fn>
void once_per_device(std::once_flag (&flags)[kMaxCachedDevices], Fn&& fn) {
  const int device = current_device();
  if (device < kMaxCachedDevices) {
    std::call_once(flags[device], std::forward<Fn>(fn));
  } else {
    fn();
  }
}

// Asks for the largest shared-memory carveout for kKernel (once per kernel and device: the template argument is the
// kernel itself, since the kernels of one family share a signature), so that occupancy is bounded by its registers
// and shared memory rather than by a smaller default L1/shared split.
template <auto kKernel>
void prefer_shared_memory() {
  static std::once_flag flags[kMaxCachedDevices];
  once_per_device(flags, [] {
    FP4MOE_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                           int(cudaSharedmemCarveoutMaxShared)));
  });
}

// Lets kKernel use `bytes` of dynamic shared memory on the current device (the limit is a per-device attribute; set
// once per kernel and device, so `bytes` must be the same on every call for one kernel).
template <auto kKernel>
void allow_dynamic_shared_memory(size_t bytes) {
  static std::once_flag flags[kMaxCachedDevices];
  once_per_device(flags, [bytes] {
    FP4MOE_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  });
}

template <class... Params, class... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = pdl_supported() ? 1 : 0;
  FP4MOE_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace fp4moe::cuda
