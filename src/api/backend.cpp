// Backend selection (what `auto` means on this machine) and the bounded workspace cache of moe_forward().
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

#include "api/prepared.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe {

namespace {


// One buffer per device (key -1 = host memory), grown on demand up to `limit` bytes.
struct CachedBuffer {
  std::vector<std::byte> host;
  DeviceBuffer device;
  size_t bytes() const { return host.size() + device.bytes(); }
  void* data() { return host.empty() ? device.get() : static_cast<void*>(host.data()); }
};

struct WorkspaceCache {
  std::mutex mutex;
  std::map<int, CachedBuffer> buffers;
  size_t limit = size_t(1) << 30;

  size_t bytes() const {
    size_t total = 0;
    for (const auto& [key, buf] : buffers) total += buf.bytes();
    return total;
  }
};

WorkspaceCache& cache() {
  static WorkspaceCache c;
  return c;
}

}  // namespace

Backend resolve_backend(Backend requested, std::string* reason) {
  const GpuSurvey& gpus = survey_gpus();
  auto say = [&](std::string why) {
    if (reason) *reason = std::move(why);
  };
  const GpuInfo* gpu = nullptr;
  for (const GpuInfo& g : gpus.devices) {
    if (g.supported() && !gpu) gpu = &g;
  }
  if (requested == Backend::kCpu) {
    say("requested explicitly");
    return Backend::kCpu;
  }
  if (requested == Backend::kCuda) {
    FP4MOE_CHECK_ARG(gpu != nullptr, "backend", "a machine with a CUDA GPU of SM80 or newer for backend cuda",
                     gpus.devices.empty() ? "no GPU (" + gpus.reason + ")" : std::string("only older GPUs"));
    say("requested explicitly");
    return Backend::kCuda;
  }
  if (gpu == nullptr) {
    say(gpus.devices.empty() ? "no CUDA GPU found (" + gpus.reason + ")" : "no GPU of SM80 or newer found");
    return Backend::kCpu;
  }
  say("CUDA GPU " + std::to_string(gpu->ordinal) + " (" + gpu->name + ", sm_" + std::to_string(gpu->cc_major) +
      std::to_string(gpu->cc_minor) + ") found");
  return Backend::kCuda;
}

void moe_forward(const PreparedWeights& weights, const MoeInputs& inputs, TensorView out, void* stream,
                 RunOptions options) {
  Runner runner(weights);
  const int64_t tokens = inputs.x.ndim >= 1 ? inputs.x.shape[0] : 0;
  const size_t need = runner.workspace_size(tokens);
  const Device device = weights.device();
  WorkspaceCache& c = cache();
  std::unique_lock lock(c.mutex);
  if (need > c.limit) {
    // A one-off buffer, released once the call is done (stream-ordered on the GPU).
    lock.unlock();
    if (device.is_cpu()) {
      std::vector<std::byte> once(need);
      runner.run(inputs, out, once.data(), once.size(), stream, options);
      return;
    }
    DeviceGuard guard(device.index);
    void* once = nullptr;
    const auto s = static_cast<cudaStream_t>(stream);
    FP4MOE_CUDA_CHECK(cudaMallocAsync(&once, need, s));
    try {
      runner.run(inputs, out, once, need, stream, options);
    } catch (...) {
      cudaFreeAsync(once, s);
      throw;
    }
    FP4MOE_CUDA_CHECK(cudaFreeAsync(once, s));
    return;
  }
  CachedBuffer& buf = c.buffers[device.is_cpu() ? -1 : device.index];
  if (buf.bytes() < need) {
    buf = CachedBuffer{};  // cudaFree waits for the device, so work still using the old buffer is done
    if (device.is_cpu()) {
      buf.host.resize(need);
    } else {
      buf.device = DeviceBuffer(device.index, need);
    }
  }
  runner.run(inputs, out, buf.data(), buf.bytes(), stream, options);
}

size_t workspace_cache_bytes() {
  std::lock_guard lock(cache().mutex);
  return cache().bytes();
}

void set_workspace_cache_limit(size_t bytes) {
  std::lock_guard lock(cache().mutex);
  cache().limit = bytes;
  for (auto it = cache().buffers.begin(); it != cache().buffers.end();) {
    it = it->second.bytes() > bytes ? cache().buffers.erase(it) : std::next(it);
  }
}

void clear_workspace_cache() {
  std::lock_guard lock(cache().mutex);
  cache().buffers.clear();
}

}  // namespace fp4moe
