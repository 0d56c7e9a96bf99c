// The wgmma path's x reorder as a launch of its own (x_reorder_kernel.cuh has the work; the routing launch's spare
// blocks run the same function): one 16-byte piece per thread.
#include "cuda/fc1/x_reorder_kernel.cuh"

namespace fp4moe::cuda {

__global__ void __launch_bounds__(kXReorderBlock) x_reorder_kernel(XReorderParams p) {
  __shared__ __align__(16) uint32_t stage[kXReorderBlock / 32][kXReorderWarpStageWords];
  griddep_wait();
  griddep_launch_dependents();
  x_reorder_strided<1>(p, int64_t(blockIdx.x) * blockDim.x + threadIdx.x, int64_t(gridDim.x) * blockDim.x,
                    stage[threadIdx.x / 32]);
}

void x_reorder_launch(const XReorderParams& p, void* stream_ptr) {
  const int64_t threads = x_reorder_pieces(p);
  if (threads == 0) return;
  launch_pdl(x_reorder_kernel, dim3(unsigned((threads + kXReorderBlock - 1) / kXReorderBlock)), kXReorderBlock, 0,
             static_cast<cudaStream_t>(stream_ptr), p);
}

}  // namespace fp4moe::cuda
