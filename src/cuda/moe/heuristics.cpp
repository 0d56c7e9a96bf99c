// Work-tile selection of the CUDA fused MoE; see heuristics.hpp.
#include "cuda/moe/heuristics.hpp"

#include <algorithm>
#include <iterator>

#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

int plan_tile_rows(const MoeConfig& c, int64_t tokens, int force_rows) {
  if (force_rows > 0) {
    FP4MOE_CHECK(std::find(std::begin(kTileRowChoices), std::end(kTileRowChoices), force_rows) !=
                     std::end(kTileRowChoices),
                 "work tile rows must be 8, 16, 32 or 64, got ", force_rows);
    return force_rows;
  }
  // Rows per hit expert if the routing spreads evenly; a tile a third larger than that holds most experts whole.
  const int64_t pairs = tokens * c.top_k;
  const int64_t experts_hit = std::max<int64_t>(1, std::min(pairs, c.num_local_experts));
  const int64_t rows_per_expert = (pairs + experts_hit - 1) / experts_hit;
  for (int rows : kTileRowChoices) {
    if (rows_per_expert * 4 <= rows * 3) return rows;
  }
  return kTileRowChoices[std::size(kTileRowChoices) - 1];
}

}  // namespace fp4moe::cuda
