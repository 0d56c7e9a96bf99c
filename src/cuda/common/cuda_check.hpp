// FP4MOE_CUDA_CHECK: turns a failed CUDA runtime call into fp4moe::Error with the call and the error text.
#pragma once

#include <cuda_runtime_api.h>

#include "fp4moe/error.hpp"

#define FP4MOE_CUDA_CHECK(call)                                                                   \
  do {                                                                                            \
    const cudaError_t fp4moe_err_ = (call);                                                       \
    if (fp4moe_err_ != cudaSuccess) {                                                             \
      ::fp4moe::fail("CUDA call ", #call, " failed: ", cudaGetErrorName(fp4moe_err_), " (",       \
                     cudaGetErrorString(fp4moe_err_), ")");                                       \
    }                                                                                             \
  } while (0)
