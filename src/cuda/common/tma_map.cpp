// Host encoding of the tensor maps (tma_map.hpp) through the driver's cuTensorMapEncodeTiled, looked up once
// through the runtime (no link against libcuda).
#include "cuda/common/tma_map.hpp"

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include "cuda/common/cuda_check.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

static_assert(sizeof(TmaMap) == sizeof(CUtensorMap) && alignof(TmaMap) >= alignof(CUtensorMap),
              "TmaMap must hold a CUtensorMap");

namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_function() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    FP4MOE_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found));
    FP4MOE_CHECK(found == cudaDriverEntryPointSuccess && f != nullptr,
                 "the CUDA driver has no cuTensorMapEncodeTiled (needed by the sm_90a wgmma path)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

template <int kRank>
TmaMap encode(CUtensorMapDataType type, const void* base, const cuuint64_t (&dims)[kRank],
              const cuuint64_t (&strides)[kRank - 1], const cuuint32_t (&box)[kRank], CUtensorMapSwizzle swizzle,
              const char* what) {
  TmaMap map{};
  cuuint32_t element_strides[kRank];
  for (int i = 0; i < kRank; ++i) element_strides[i] = 1;
  const CUresult r = encode_function()(reinterpret_cast<CUtensorMap*>(&map), type, kRank, const_cast<void*>(base),
                                       dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                       CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  FP4MOE_CHECK(r == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed for ", what, " (CUresult ", int(r), ")");
  return map;
}

}  // namespace

TmaMap bf16_rows_tma_map(const uint16_t* base, int64_t rows, int64_t cols, int64_t ld, int box_rows) {
  FP4MOE_CHECK(ld % 8 == 0 && cols <= ld, "BF16 tensor map: row stride ", ld, " for ", cols, " columns");
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(ld) * 2};
  const cuuint32_t box[2] = {64, cuuint32_t(box_rows)};
  return encode<2>(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, base, dims, strides, box, CU_TENSOR_MAP_SWIZZLE_128B,
                   "BF16 rows");
}

}  // namespace fp4moe::cuda
