// Host side of tma_map.hpp: cuTensorMapEncodeTiled, taken from the driver through the runtime's entry-point query,
// so the library does not link the driver library directly.
#include "cuda/common/tma_map.hpp"

#include <cuda.h>
#include <cuda_runtime.h>

#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

static_assert(sizeof(TmaMap) == sizeof(CUtensorMap) && alignof(TmaMap) >= alignof(CUtensorMap),
              "TmaMap holds a CUtensorMap");

namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encode_tiled() {
  static const EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                                           &found);
    FP4MOE_CHECK(e == cudaSuccess && found == cudaDriverEntryPointSuccess && f,
                 "cuTensorMapEncodeTiled is not available from the CUDA driver (", cudaGetErrorString(e), ")");
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

}  // namespace

TmaMap make_tma_map_bf16_rows(const void* base, int64_t rows, int64_t cols, int64_t row_stride, int box_rows) {
  FP4MOE_CHECK(rows >= 1 && cols >= 64 && cols % 8 == 0 && row_stride % 8 == 0 && row_stride >= cols,
               "TMA map: bad shape rows=", rows, " cols=", cols, " row_stride=", row_stride);
  FP4MOE_CHECK(reinterpret_cast<uintptr_t>(base) % 16 == 0, "TMA map: base must be 16-byte aligned");
  FP4MOE_CHECK(box_rows >= 1 && box_rows <= 256, "TMA map: box_rows must be in [1, 256], got ", box_rows);
  TmaMap map{};
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(row_stride) * 2};
  const cuuint32_t box[2] = {64, cuuint32_t(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = encode_tiled()(reinterpret_cast<CUtensorMap*>(&map), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
                                    const_cast<void*>(base), dims, strides, box, element_strides,
                                    CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  FP4MOE_CHECK(r == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed (CUresult ", int(r), ") for rows=", rows,
               " cols=", cols, " box_rows=", box_rows);
  return map;
}

}  // namespace fp4moe::cuda
