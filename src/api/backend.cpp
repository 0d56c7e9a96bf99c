// Backend selection (what `auto` means on this machine) and the bounded workspace cache of moe_forward().
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "api/prepared.hpp"
#include "cuda/common/device_info.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe {

namespace {

// The fused MoE kernels for the GPU are the next milestone; until they land `auto` resolves to the CPU.
constexpr bool kCudaMoeBuilt = false;

struct WorkspaceCache {
  std::mutex mutex;
  std::map<int, std::vector<std::byte>> host;  // keyed by device (-1 = CPU); one buffer each
  size_t limit = size_t(1) << 30;

  size_t bytes() const {
    size_t total = 0;
    for (const auto& [key, buf] : host) total += buf.size();
    return total;
  }
};

WorkspaceCache& cache() {
  static WorkspaceCache c;
  return c;
}

}  // namespace

Backend resolve_backend(Backend requested, std::string* reason) {
  const GpuSurvey gpus = survey_gpus();
  auto say = [&](std::string why) {
    if (reason) *reason = std::move(why);
  };
  if (requested == Backend::kCpu) {
    say("requested explicitly");
    return Backend::kCpu;
  }
  if (requested == Backend::kCuda) {
    FP4MOE_CHECK_ARG(kCudaMoeBuilt, "backend", "cpu or auto (the CUDA MoE path is not part of this build yet)",
                     "cuda");
    FP4MOE_CHECK_ARG(!gpus.devices.empty(), "backend", "a machine with a CUDA GPU for backend cuda",
                     "no GPU (" + gpus.reason + ")");
    say("requested explicitly");
    return Backend::kCuda;
  }
  if (!kCudaMoeBuilt) {
    say("the CUDA MoE path is not part of this build yet, so auto runs the CPU reference");
  } else if (gpus.devices.empty()) {
    say("no CUDA GPU found (" + gpus.reason + ")");
  } else {
    say("CUDA GPU found: " + gpus.devices.front().name);
    return Backend::kCuda;
  }
  return Backend::kCpu;
}

void moe_forward(const PreparedWeights& weights, const MoeInputs& inputs, TensorView out, void* stream,
                 RunOptions options) {
  Runner runner(weights);
  const int64_t tokens = inputs.x.ndim >= 1 ? inputs.x.shape[0] : 0;
  const size_t need = runner.workspace_size(tokens);
  WorkspaceCache& c = cache();
  std::unique_lock lock(c.mutex);
  if (need > c.limit) {
    lock.unlock();
    std::vector<std::byte> once(need);
    runner.run(inputs, out, once.data(), once.size(), stream, options);
    return;
  }
  std::vector<std::byte>& buf = c.host[-1];
  if (buf.size() < need) {
    buf.clear();
    buf.shrink_to_fit();
    buf.resize(need);
  }
  runner.run(inputs, out, buf.data(), buf.size(), stream, options);
}

size_t workspace_cache_bytes() {
  std::lock_guard lock(cache().mutex);
  return cache().bytes();
}

void set_workspace_cache_limit(size_t bytes) {
  std::lock_guard lock(cache().mutex);
  cache().limit = bytes;
  for (auto it = cache().host.begin(); it != cache().host.end();) {
    it = it->second.size() > bytes ? cache().host.erase(it) : std::next(it);
  }
}

void clear_workspace_cache() {
  std::lock_guard lock(cache().mutex);
  cache().host.clear();
}

}  // namespace fp4moe
