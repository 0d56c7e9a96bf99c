// GPU timing helpers of the benchmark instrument (host code, header-only): a stream, a cuBLAS handle with its own
// workspace, the L2 flush, event timing of one call at a time (median, p10, p90) and CUDA graph capture.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "api/device_buffer.hpp"
#include "bench/bench_cuda.hpp"
#include "cuda/common/cuda_check.hpp"

#define FP4MOE_CUBLAS_CHECK(call)                                                            \
  do {                                                                                       \
    const cublasStatus_t fp4moe_status_ = (call);                                            \
    if (fp4moe_status_ != CUBLAS_STATUS_SUCCESS) {                                           \
      ::fp4moe::fail("cuBLAS call ", #call, " failed: ", cublasGetStatusName(fp4moe_status_), \
                     " (", cublasGetStatusString(fp4moe_status_), ")");                       \
    }                                                                                        \
  } while (0)

namespace fp4moe::bench {

class Stream {
 public:
  Stream() { FP4MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void sync() const { FP4MOE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

// A handle bound to `stream` with an explicit workspace, so that calls allocate nothing and can be captured.
class Cublas {
 public:
  Cublas(int device, cudaStream_t stream) : workspace_(device, kWorkspaceBytes) {
    FP4MOE_CUBLAS_CHECK(cublasCreate(&handle_));
    FP4MOE_CUBLAS_CHECK(cublasSetStream(handle_, stream));
    FP4MOE_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.get(), workspace_.bytes()));
  }
  ~Cublas() { cublasDestroy(handle_); }
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  static constexpr size_t kWorkspaceBytes = size_t(64) << 20;
  DeviceBuffer workspace_;
  cublasHandle_t handle_ = nullptr;
};

// Evicts the L2 by writing a buffer of twice its size (a different byte value each time).
class L2Flusher {
 public:
  explicit L2Flusher(int device) {
    int l2 = 0;
    FP4MOE_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
    buffer_ = DeviceBuffer(device, std::max<size_t>(2 * size_t(l2), size_t(8) << 20));
  }
  void flush(cudaStream_t stream) {
    value_ = (value_ + 1) & 0xFF;
    FP4MOE_CUDA_CHECK(cudaMemsetAsync(buffer_.get(), value_, buffer_.bytes(), stream));
  }

 private:
  DeviceBuffer buffer_;
  int value_ = 0;
};

class EventPool {
 public:
  EventPool() = default;
  ~EventPool() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  cudaEvent_t at(size_t i) {
    while (events_.size() <= i) {
      cudaEvent_t e = nullptr;
      FP4MOE_CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    return events_[i];
  }

 private:
  std::vector<cudaEvent_t> events_;
};

inline Timing summarize(std::vector<double> us) {
  Timing t;
  if (us.empty()) return t;
  std::sort(us.begin(), us.end());
  const auto pick = [&](double q) { return us[size_t(std::floor(q * double(us.size() - 1)))]; };
  t.median_us = us.size() % 2 ? us[us.size() / 2] : 0.5 * (us[us.size() / 2 - 1] + us[us.size() / 2]);
  t.p10_us = pick(0.1);
  t.p90_us = pick(0.9);
  t.runs = int(us.size());
  return t;
}

// Times `enqueue` (work issued on `stream`) one call at a time between two events, each call preceded by an
// untimed L2 flush when `flusher` is given. Warm-up calls also estimate the run count: at least o.min_runs and
// enough for o.min_total_ms, at most o.max_runs.
inline Timing time_calls(const std::function<void()>& enqueue, cudaStream_t stream, L2Flusher* flusher,
                         const TimingOptions& o) {
  EventPool events;
  const auto issue = [&](int runs) {
    for (int i = 0; i < runs; ++i) {
      if (flusher) flusher->flush(stream);
      FP4MOE_CUDA_CHECK(cudaEventRecord(events.at(2 * size_t(i)), stream));
      enqueue();
      FP4MOE_CUDA_CHECK(cudaEventRecord(events.at(2 * size_t(i) + 1), stream));
    }
    FP4MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<double> us(static_cast<size_t>(runs));
    for (int i = 0; i < runs; ++i) {
      float ms = 0;
      FP4MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, events.at(2 * size_t(i)), events.at(2 * size_t(i) + 1)));
      us[size_t(i)] = 1e3 * double(ms);
    }
    return us;
  };
  const std::vector<double> warm = issue(std::max(o.warmup, 1));
  const double estimate_us = std::max(*std::min_element(warm.begin(), warm.end()), 1.0);
  const int wanted = int(std::ceil(o.min_total_ms * 1e3 / estimate_us));
  return summarize(issue(std::clamp(wanted, std::max(o.min_runs, 1), std::max(o.max_runs, o.min_runs))));
}

class GraphExec {
 public:
  GraphExec() = default;
  ~GraphExec() { reset(); }
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  void reset() {
    if (exec_) cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }
  void launch(cudaStream_t stream) const { FP4MOE_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

  // Captures the work that `enqueue` issues on `stream` and instantiates it. Returns "" on success, else why the
  // capture failed (the stream is left out of capture mode and the error state cleared).
  std::string capture(const std::function<void()>& enqueue, cudaStream_t stream) {
    reset();
    FP4MOE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    std::string why;
    try {
      enqueue();
    } catch (const std::exception& e) {
      why = e.what();
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (why.empty() && end != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end);
    if (why.empty() && graph) {
      const cudaError_t inst = cudaGraphInstantiate(&exec_, graph, 0);
      if (inst != cudaSuccess) why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(inst);
    }
    if (graph) cudaGraphDestroy(graph);
    if (!why.empty()) {
      cudaGetLastError();
      exec_ = nullptr;
    }
    return why;
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace fp4moe::bench
