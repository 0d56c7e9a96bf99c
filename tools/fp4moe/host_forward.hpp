// Runs a prepared layer on host tensors whatever its backend: for the CUDA backend the inputs are copied to the
// device, the layer runs, and `out` is copied back (synchronously). For the CLI, not a hot path.
#pragma once

#include "fp4moe/moe.hpp"

namespace fp4moe::cli {

void forward_host_tensors(const PreparedWeights& weights, const MoeInputs& host_inputs, TensorView host_out,
                          RunOptions options = {});

}  // namespace fp4moe::cli
