// Host staging of source tensors for weight preparation: device-resident views are copied to host memory (same
// strides) so one conversion path serves host and device sources. Load time only, never per call.
#pragma once

#include <cstdint>
#include <list>
#include <vector>

#include "fp4moe/tensor.hpp"

namespace fp4moe {

// Elements spanned by a strided view (non-negative strides), from its first to its last element.
int64_t span_elements(const TensorView& t);

class HostStaging {
 public:
  // The view itself when it is in host memory (or empty); else a host copy kept alive by this object.
  TensorView stage(const TensorView& t);

 private:
  std::list<std::vector<uint8_t>> buffers_;  // a list: views into earlier buffers stay valid
};

}  // namespace fp4moe
