// core/cuda_graph.h — a step of CUDA work captured once and replayed: the device work of a
// function (kernels, device copies, memsets, uploads) recorded as a CUDA graph
// (cuda_rt::begin_capture) with its memory from a private pool (CudaMemoryPool), so that every
// replay runs the same kernels on the same addresses and nothing else can be given those
// addresses in between. What a replay cannot know is fixed at capture: tensor shapes, pointers,
// kernel arguments, and host bytes uploaded during the capture. Values that change from replay to
// replay (a step's random draws, the learning rate) go to device memory the captured kernels read
// (written before replay()); a change of shapes needs a new capture — the graph carries the
// signature it was captured for, and replay() refuses another (ValueError naming both).
//
// The captured function's device work does not run during the capture (only its host code does):
// call replay() to run it, also the first time. It may not read device results (downloads and
// synchronisation throw CudaError while capturing).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/allocator.h"
#include "core/cuda_runtime.h"

namespace unet {

class CudaGraph {
 public:
  // Captures the device work of `work()` on this thread; `signature` names what the graph is
  // valid for (shapes, typically). Exceptions from work() end the capture and propagate.
  CudaGraph(const std::function<void()>& work, std::string signature);
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Runs the captured work again. Throws ValueError if `signature` differs from the capture's.
  void replay(const std::string& signature) const;
  const std::string& signature() const { return signature_; }
  size_t operations() const { return work_->operations(); }

 private:
  std::unique_ptr<CudaMemoryPool> pool_;  // declared first: outlives the captured work
  std::unique_ptr<cuda_rt::CapturedWork> work_;
  std::string signature_;
};

}  // namespace unet
